"""tf_ecg: faithful Keras 3 ports of five published ECG deep-learning systems.

The Python face (``tf_ecg.api``): :func:`train` a recipe, :func:`evaluate` a run, :func:`export`
a run or a preset as a SavedModel, :func:`load` one and ``predict`` on any recording,
:func:`presets` / :func:`load_preset` for the published models, :func:`synth` DeepFake ECGs,
:func:`read_recording` in millivolts, :func:`load_data` (a recipe's splits),
:func:`leave_one_out` (system 4's protocol); :func:`build_model`, :func:`model_names` and
:func:`load_original_weights` for the Keras models themselves.
"""

import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks
if platform.machine().lower() in ("x86_64", "amd64"):
    # TensorFlow runs its oneDNN CPU kernels by default only where the CPU has AVX-512 VNNI /
    # BF16, AVX-VNNI or AMX; elsewhere (AMD Zen 1-3, Intel before Ice Lake) its Eigen kernels,
    # which trained every port 1.1-1.5x slower (though inferring up to 1.75x faster; docs/speed.md).
    # Read once, when TensorFlow starts: import tf_ecg first, or set TF_ENABLE_ONEDNN_OPTS
    # yourself (0 keeps Eigen, the better choice for a process that only predicts there).
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
__all__ = ["train", "evaluate", "export", "load", "presets", "load_preset", "synth", "read_recording",
           "load_data", "leave_one_out", "build_model", "model_names", "load_original_weights", "__version__"]

# Imported on first use, so that `import tf_ecg` (and `tf-ecg --help`, `presets`, `models`)
# does not start TensorFlow; the modules below import it.
_LAZY = {**{name: "tf_ecg.api" for name in ("train", "evaluate", "export", "load", "presets", "load_preset",
                                            "synth", "read_recording", "load_data", "leave_one_out")},
         "build_model": "tf_ecg.building", "model_names": "tf_ecg.registry",
         "load_original_weights": "tf_ecg.weights"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tf_ecg' has no attribute {name!r}")
    import importlib

    from tf_ecg.runtime import check_keras_backend

    check_keras_backend()
    try:  # the models and weights need only Keras' backend; the rest needs TensorFlow too
        value = getattr(importlib.import_module(_LAZY[name]), name)
    except ModuleNotFoundError as missing:
        if missing.name == "tensorflow":
            require_tensorflow()
        raise
    globals()[name] = value
    return value


def require_tensorflow() -> None:
    """TensorFlow is an extra (the CPU or the GPU wheel, never both): say which to install."""
    try:
        import tensorflow  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError('TensorFlow is not installed: pip install "tf_ecg[cpu]" (CPU only) or '
                                  '"tf_ecg[gpu]" (NVIDIA GPUs, CUDA from pip)', name="tensorflow") from None
