"""Where did the model look: per-sample attributions of an exported model's outputs.

Two methods, both on what the user gave (windows in millivolts, before the preprocessing
inside the SavedModel):

* **Integrated gradients** (Sundararajan et al. 2017): the gradient of the explained output
  averaged along the straight path from a baseline to the window, times (window - baseline).
  Baseline: a flat line at 0 mV (no electrical activity); 64 steps, midpoint rule. The
  attributions of a window sum to (output(window) - output(baseline)) up to that rule's error.
* **Grad-CAM 1D** (Selvaraju et al. 2017): the last convolutional feature map weighted by the
  time-averaged gradient of the output with respect to it, rectified, linearly interpolated
  to the window's length and given to every lead (a map over time, not over leads). Needs the
  ``features`` / ``head`` endpoints a conv net's export carries.

Both work on any pair of callables, so that the benchmark (``benchmarks/explain.py``) measures
them on Keras models and their weight-randomised copies with the same code.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_ecg.data.paths import check_output_dir
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError
from tf_ecg.evaluation.metrics import strict_json

METHODS = ("integrated_gradients", "grad_cam")
# "auto": chosen by benchmarks/explain.py (results/explain.json "default"): Grad-CAM passed the
# randomisation check on every model and was faithful on the beat classifier; on the HR
# regressor only integrated gradients were (deletion), Grad-CAM was not.
DEFAULT_METHOD = {"classification": "grad_cam", "regression": "integrated_gradients"}
IG_STEPS = 64
IG_BASELINE = "zeros: a flat line at 0 mV"
EXPLAINED_TASKS = ("multiclass", "multilabel", "binary", "regression")
STRIPS = 4  # PNGs written: the first windows (a long recording has hundreds)


def integrated_gradients(serve, windows: np.ndarray, targets: np.ndarray, steps: int = IG_STEPS,
                         sign: np.ndarray | None = None, batch_size: int = 64) -> np.ndarray:
    """Integrated gradients of output ``targets[i]`` of ``serve`` (windows -> outputs (n, k):
    a TensorFlow callable, or a Keras model on any backend) for each window, from a 0
    baseline; ``sign`` -1 explains 1 - p of a single sigmoid. Returns an array of the
    windows' shape."""
    windows = np.asarray(windows, np.float32)
    sign = np.ones(len(windows), np.float32) if sign is None else np.asarray(sign, np.float32)
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    attributions = np.empty_like(windows)
    per_call = max(1, batch_size // steps) if steps < batch_size else 1
    for start in range(0, len(windows), per_call):
        chunk = windows[start:start + per_call]
        gradients = np.zeros_like(chunk)
        for first in range(0, steps, batch_size):
            a = alphas[first:first + batch_size]
            path = (a[None, :, None, None] * chunk[:, None]).reshape(-1, *chunk.shape[1:])
            chosen = _chosen_outputs(targets[start:start + len(chunk)], sign[start:start + len(chunk)], len(a))
            gradients += _output_gradient(serve, path, chosen).reshape(len(chunk), len(a), *chunk.shape[1:]).sum(axis=1)
        attributions[start:start + len(chunk)] = chunk * gradients / steps
    return attributions


def grad_cam(features, head, windows: np.ndarray, targets: np.ndarray, sign: np.ndarray | None = None,
             batch_size: int = 32) -> np.ndarray:
    """Grad-CAM of output ``targets[i]``: ``features`` (windows -> map (n, time, channels)) and
    ``head`` (map -> outputs), TensorFlow callables or Keras models on any backend. Returns an
    array of the windows' shape (the same map on every lead), >= 0."""
    windows = np.asarray(windows, np.float32)
    sign = np.ones(len(windows), np.float32) if sign is None else np.asarray(sign, np.float32)
    length = windows.shape[1]
    maps = np.empty(windows.shape[:2], np.float32)
    for start in range(0, len(windows), batch_size):
        feature_map = _as_numpy(features(windows[start:start + batch_size])).astype(np.float32)
        chosen = _chosen_outputs(targets[start:start + batch_size], sign[start:start + batch_size], 1)
        weights = _output_gradient(head, feature_map, chosen).mean(axis=1, keepdims=True)
        cam = np.maximum((weights * feature_map).sum(axis=2), 0.0)
        # each map position covers an equal share of the window: centres, then linear interpolation
        centres = (np.arange(cam.shape[1]) + 0.5) * length / cam.shape[1] - 0.5
        maps[start:start + len(cam)] = [np.interp(np.arange(length), centres, row) for row in cam]
    return np.repeat(maps[:, :, None], windows.shape[2], axis=2)


def _chosen_outputs(targets: np.ndarray, sign: np.ndarray, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Each window's explained output and sign, once per row it has in the batch (its path steps)."""
    return np.repeat(np.asarray(targets, np.int64), repeats), np.repeat(sign, repeats)


def _output_gradient(function, inputs: np.ndarray, chosen) -> np.ndarray:
    """d/d inputs of sum_i sign_i * function(inputs)[i, target_i]: a vector-Jacobian product
    whose cotangent is the one-hot of the chosen outputs. ``function``: a Keras model (on the
    Keras backend: TensorFlow, JAX or PyTorch) or a TensorFlow callable (a SavedModel's
    endpoint), whichever backend runs it."""
    targets, sign = chosen
    backend = keras.backend.backend() if isinstance(function, keras.Model) else "tensorflow"

    def cotangent(outputs_shape):
        weights = np.zeros((len(inputs), int(np.prod(outputs_shape[1:], dtype=int))), np.float32)
        weights[np.arange(len(inputs)), targets] = sign
        return weights.reshape(outputs_shape)

    if backend == "jax":
        import jax

        outputs, pullback = jax.vjp(lambda x: function(x).astype("float32"), inputs)
        return np.asarray(pullback(cotangent(outputs.shape))[0])
    if backend == "torch":
        import torch

        x = keras.ops.convert_to_tensor(inputs).requires_grad_(True)
        outputs = function(x).float()
        (gradient,) = torch.autograd.grad(outputs, x, grad_outputs=keras.ops.convert_to_tensor(cotangent(tuple(outputs.shape))))
        return keras.ops.convert_to_numpy(gradient)
    x = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = tf.cast(function(x), tf.float32)
    return tape.gradient(outputs, x, output_gradients=tf.constant(cotangent(tuple(outputs.shape)))).numpy()


def _as_numpy(tensor) -> np.ndarray:
    return tensor.numpy() if isinstance(tensor, tf.Tensor) else keras.ops.convert_to_numpy(tensor)


def auto_method(task: str, has_feature_map: bool) -> str:
    """The measured default for a task (:data:`DEFAULT_METHOD`); integrated gradients where the
    export carries no convolutional feature map."""
    method = DEFAULT_METHOD["regression" if task == "regression" else "classification"]
    return method if method != "grad_cam" or has_feature_map else "integrated_gradients"


def explained_outputs(outputs: np.ndarray, metadata: dict, output: str | None) -> tuple[np.ndarray, np.ndarray, list]:
    """(output index, sign, name) per window: ``output`` (a class or target name), else the
    predicted class (the highest probability; for one sigmoid, the decided class)."""
    names, task = list(metadata["output_names"]), metadata["task"]  # checked by the callers, before the work
    n = len(outputs)
    if task == "binary":  # one sigmoid = P(names[1])
        threshold = float(np.ravel(metadata.get("thresholds") or 0.5)[0])
        positive = (outputs[:, 0] > threshold) if output is None else np.full(n, output == names[1])
        return np.zeros(n, np.int32), np.where(positive, 1.0, -1.0), [names[int(p)] for p in positive]
    if output is not None:
        index = np.full(n, names.index(output), np.int32)
    else:
        index = np.zeros(n, np.int32) if task == "regression" else outputs.argmax(axis=1).astype(np.int32)
    return index, np.ones(n), [names[i] for i in index]


def explain_recording(saved_model: str | Path, recording: str | Path, out: str | Path | None = None,
                      method: str = "auto", output: str | None = None,
                      sampling_rate: float | None = None, units: str | None = None, steps: int = IG_STEPS,
                      exported=None) -> dict:
    """Attributions of an exported model's outputs on one recording, window by window; with
    ``out``, written there (new folder): ``attributions.npy`` (the windows' shape, mV input),
    ``windows.npy``, ``explain.json`` (method, settings, positions, outputs, explained class)
    and ``strip_<i>.png`` of the first windows."""
    from tf_ecg.predict import recording_windows
    from tf_ecg.saved_model import load_exported

    if method not in (*METHODS, "auto"):
        raise ECGDataError(None, f"unknown method {method!r}; methods: auto, {', '.join(METHODS)}")
    exported = exported or load_exported(saved_model)
    metadata = exported.metadata
    if metadata["task"] not in EXPLAINED_TASKS:
        raise ECGDataError(saved_model, f"explain covers classifiers and regressors; this model is a "
                                        f"{metadata['task']}")
    chosen_by = "auto" if method == "auto" else "the caller"
    if method == "auto":
        method = auto_method(metadata["task"], hasattr(exported.loaded, "features"))
    if output is not None and output not in metadata["output_names"]:
        raise ECGDataError(None, f"output {output!r} is not one of the model's outputs: "
                                 f"{', '.join(metadata['output_names'])}")
    loaded = exported.loaded
    if method == "grad_cam" and not (hasattr(loaded, "features") and hasattr(loaded, "head")):
        raise ECGDataError(saved_model, "grad_cam needs a convolutional feature map the export does not carry "
                                        "(a model without conv layers, or exported before tf_ecg 0.2: export "
                                        "it again); integrated_gradients works on every export")
    if out is not None:
        out = check_output_dir(out, lambda path: (Path(path) / "explain.json").is_file(), what="explanation")
    windows, positions, notes = recording_windows(exported, Path(recording), sampling_rate, units)
    if len(windows) == 0:
        raise ECGDataError(recording, "no window to explain: the recording is shorter than one window")
    outputs = np.concatenate([exported(windows[i:i + 64]) for i in range(0, len(windows), 64)])
    index, sign, explained = explained_outputs(outputs, metadata, output)
    if method == "integrated_gradients":
        attributions = integrated_gradients(loaded.serve, windows, index, steps, sign)
        settings = {"baseline": IG_BASELINE, "steps": steps, "rule": "midpoint Riemann sum"}
    else:
        attributions = grad_cam(loaded.features, loaded.head, windows, index, sign)
        settings = {"feature_map": "the last convolutional layer's output (the export's features endpoint)",
                    "upsampling": "linear, to the window's length; the same map on every lead"}
    result = {"method": method, "chosen_by": chosen_by, "settings": settings, "task": metadata["task"],
              "output_names": metadata["output_names"], "explained": explained, "positions": positions.tolist(),
              "outputs": outputs.tolist(), "units": "mV", "warnings": notes,
              "input_spec": metadata["input_spec"], "attributions": attributions, "windows": windows}
    if out is not None:
        _write(out, result)
    return result


def _write(out: Path, result: dict) -> None:
    """All files in a staging folder first, then moved into place: nothing half-written."""
    import matplotlib.pyplot as plt

    from tf_ecg.evaluation.plots import ecg_strip

    spec = InputSpec(**result["input_spec"])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        np.save(staging / "attributions.npy", result["attributions"].astype(np.float32))
        np.save(staging / "windows.npy", result["windows"].astype(np.float32))
        described = {k: v for k, v in result.items() if k not in ("attributions", "windows")}
        (staging / "explain.json").write_text(strict_json({**described, "files": {
            "attributions": "attributions.npy (windows, samples, leads): attribution per input sample",
            "windows": "windows.npy: the windows explained, mV at the model's rate"}}))
        leads = spec.display_leads()
        for i in range(min(STRIPS, len(result["windows"]))):
            window = result["windows"][i]
            if spec.kind == "glucose_beat":  # the last value is the RR interval, not a sample
                window, attribution = window[:-1], result["attributions"][i][:-1]
            else:
                attribution = result["attributions"][i]
            score = np.ravel(result["outputs"][i])
            shown = (f"{result['explained'][i]} {score[result['output_names'].index(result['explained'][i])]:.2f}"
                     if result["task"] != "binary" else f"{result['explained'][i]} (p = {score[0]:.2f})")
            figure = ecg_strip(window, spec.sampling_rate, leads, f"window {i} at {result['positions'][i]}: {shown} "
                               f"({result['method'].replace('_', ' ')})", attribution=attribution)
            figure.savefig(staging / f"strip_{i}.png", dpi=90)
            plt.close(figure)
        if out.exists():
            shutil.rmtree(out)  # an earlier explanation (checked), replaced only now
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
