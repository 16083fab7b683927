"""tf_ecg: faithful Keras 3 ports of five published ECG deep-learning systems."""

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

try:
    import tensorflow as _tensorflow  # noqa: F401
except ModuleNotFoundError:  # TensorFlow is an extra: the CPU or the GPU wheel, never both
    raise ModuleNotFoundError('tf_ecg needs TensorFlow: pip install "tf_ecg[cpu]" (CPU only) or '
                              '"tf_ecg[gpu]" (NVIDIA GPUs, CUDA from pip)') from None

from tf_ecg import models as _models  # noqa: E402,F401 (registers every model)
from tf_ecg.building import build_model  # noqa: E402
from tf_ecg.registry import model_names  # noqa: E402
from tf_ecg.weights import load_original_weights  # noqa: E402
from tf_ecg import deepfake as _deepfake  # noqa: E402,F401 (registers the DeepFake data source)

__version__ = "0.1.0"
__all__ = ["build_model", "model_names", "load_original_weights", "__version__"]
