"""Exports for devices and other runtimes: LiteRT (TFLite) and ONNX, from a tf_ecg SavedModel.

Both are converted from the SavedModel's serving signature, so the preprocessing inside it
(unit scaling, padding, per-lead min-max) travels with the model: the ``.tflite`` or ``.onnx``
takes the same millivolt windows at the model's rate. Beside the file, ``<file>.json`` holds
the SavedModel's metadata (input contract, outputs, task) and how the file was made.

LiteRT ``quantize``: ``none`` (float32), ``dynamic`` (int8 weights, float activations) or
``int8`` (int8 weights and activations, float32 in and out), which calibrates activation
ranges on representative windows. ONNX goes through tf2onnx; both converters are optional
dependencies (``pip install "tf_ecg[edge]"``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tf_ecg.data.paths import check_new_file, sha256_of
from tf_ecg.errors import ECGDataError, TfEcgInputError

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("none", "dynamic", "int8")
SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}
ONNX_OPSET = 17


class ConversionError(TfEcgInputError):
    """A model (or a version pair of TensorFlow and a converter) that a runtime cannot take."""


def export_edge(saved_model: str | Path, out: str | Path, file_format: str, quantize: str = "none",
                representative: np.ndarray | None = None) -> Path:
    """Convert a tf_ecg SavedModel into ``out`` (``.tflite`` or ``.onnx``), written whole or
    not at all, with its metadata in ``<out>.json``. ``representative``: serving windows
    (n, length, leads) in mV for ``quantize="int8"``."""
    from tf_ecg.saved_model import load_exported

    saved_model, out = Path(saved_model), check_edge_request(out, file_format, quantize)
    if quantize == "int8" and (representative is None or not len(representative)):
        raise ECGDataError(None, "--quantize int8 needs representative windows: a run's training split, or "
                                 "--calibration-data WINDOWS.npy for a preset")
    metadata = load_exported(saved_model).metadata
    content = _tflite(saved_model, quantize, representative) if file_format == "tflite" else _onnx(saved_model, metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as staging:
        model_file, metadata_file = Path(staging) / out.name, Path(staging) / (out.name + ".json")
        model_file.write_bytes(content)
        metadata_file.write_text(json.dumps({**metadata, "edge": {
            "format": file_format, "quantize": quantize, "from": str(saved_model),
            "representative_windows": None if representative is None else len(representative),
            "sha256": sha256_of(model_file)}}, indent=1, default=str))
        shutil.move(str(metadata_file), str(out.with_name(out.name + ".json")))
        shutil.move(str(model_file), str(out))
    return out


def check_edge_request(out: str | Path, file_format: str, quantize: str) -> Path:
    """The format, quantization and output file of an edge export, checked before any work."""
    out = Path(out)
    if file_format not in SUFFIXES:
        raise ECGDataError(None, f"format {file_format!r}: choose one of {list(SUFFIXES)}")
    if quantize not in QUANTIZATIONS:
        raise ECGDataError(None, f"--quantize {quantize!r}: choose one of {list(QUANTIZATIONS)}")
    if out.suffix != SUFFIXES[file_format]:
        raise ECGDataError(out, f"a {file_format} export is written to a {SUFFIXES[file_format]} file")
    if quantize != "none" and file_format != "tflite":
        raise ECGDataError(None, f"--quantize {quantize} is for LiteRT (--format tflite); ONNX is exported in float32")
    check_new_file(out, f"{file_format} model")
    check_new_file(out.with_name(out.name + ".json"), "metadata")
    return out


def _tflite(saved_model: Path, quantize: str, representative: np.ndarray | None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serving_default"])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        windows = np.asarray(representative, dtype=np.float32)

        def calibration():
            for window in windows:
                yield [window[None]]

        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as error:  # noqa: BLE001 - the converter raises ConverterError, ValueError, RuntimeError...
        raise ConversionError(saved_model, f"LiteRT conversion failed with TensorFlow {tf.__version__} "
                                           f"({type(error).__name__}: {str(error).splitlines()[0][:300]})") from None


def _onnx(saved_model: Path, metadata: dict) -> bytes:
    import tensorflow as tf

    try:
        import tf2onnx
    except ImportError:
        raise ConversionError(None, 'ONNX export needs tf2onnx: pip install "tf_ecg[edge]"') from None
    loaded = tf.saved_model.load(str(saved_model))  # kept referenced: its function needs its variables
    (name, spec), = loaded.signatures["serving_default"].structured_input_signature[1].items()
    try:
        model, _ = tf2onnx.convert.from_function(loaded.serve, opset=ONNX_OPSET,
                                                 input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=name)])
    except Exception as error:  # noqa: BLE001 - tf2onnx raises many types for an op it cannot map
        raise ConversionError(saved_model, f"tf2onnx {tf2onnx.__version__} cannot convert this model with "
                                           f"TensorFlow {tf.__version__} ({type(error).__name__}: "
                                           f"{str(error).splitlines()[0][:300]})") from None
    return model.SerializeToString()


def tflite_runner(path: str | Path):
    """A callable running a ``.tflite`` file on windows (the LiteRT interpreter, or TensorFlow's
    where ai-edge-litert is not installed), loaded once; tensors are resized per batch shape."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite import Interpreter
    interpreter = Interpreter(model_path=str(path))
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    shape = None

    def run(windows: np.ndarray) -> np.ndarray:
        nonlocal shape
        if windows.shape != shape:
            interpreter.resize_tensor_input(source["index"], windows.shape)
            interpreter.allocate_tensors()
            shape = windows.shape
        interpreter.set_tensor(source["index"], np.asarray(windows, dtype=np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return run


def onnx_runner(path: str | Path):
    """A callable running an ``.onnx`` file on windows (onnxruntime, CPU), loaded once."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda windows: session.run(None, {name: np.asarray(windows, dtype=np.float32)})[0]


def run_tflite(path: str | Path, windows: np.ndarray) -> np.ndarray:
    """The outputs of a ``.tflite`` file on ``windows``."""
    return tflite_runner(path)(windows)


def run_onnx(path: str | Path, windows: np.ndarray) -> np.ndarray:
    """The outputs of an ``.onnx`` file on ``windows``."""
    return onnx_runner(path)(windows)
