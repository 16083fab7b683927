"""Load the original projects' weight files into the Keras ports.

``load_original_weights(model, path)`` dispatches on the file: Keras HDF5 files load
topologically (layer order, as tf.keras 2 did); PyTorch checkpoints (zip or legacy
format) are read without torch and mapped onto the model's layers by the weight map
registered for the model's name (``tf_ecg.weights.mappings``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import h5py
import keras

from tf_ecg.errors import WeightFileError
from tf_ecg.weights.mappings import apply_torch_state_dict
from tf_ecg.weights.torch_checkpoint import find_state_dict, read_torch_checkpoint

__all__ = ["load_original_weights", "read_torch_checkpoint", "find_state_dict"]


def load_original_weights(model: keras.Model, path: str | Path) -> keras.Model:
    """Load an original project's weight file into ``model`` (in place) and return it."""
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(path, "file not found")
    if h5py.is_hdf5(path):
        _load_keras_hdf5(model, path)
    elif zipfile.is_zipfile(path) or path.suffix in (".pt", ".pth"):
        state_dict = find_state_dict(read_torch_checkpoint(path), path)
        apply_torch_state_dict(model, state_dict, path)
    else:
        raise WeightFileError(path, "unknown weight format (expected Keras HDF5 or a torch .pt/.pth)")
    return model


def _load_keras_hdf5(model: keras.Model, path: Path) -> None:
    """tf.keras 2 ``model.save``/``save_weights`` HDF5: load by layer order, check shapes."""
    with h5py.File(path, "r") as handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" not in group.attrs:
            raise WeightFileError(path, "HDF5 file without Keras 'layer_names': not a Keras weight file")
        file_layers = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        file_weights = []
        for layer_name in file_layers:
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group[layer_name].attrs.get("weight_names", [])]
            if names:
                file_weights.append((layer_name, [group[layer_name][n][()] for n in names]))
    model_layers = [layer for layer in model.layers if layer.weights]
    if len(model_layers) != len(file_weights):
        raise WeightFileError(path, f"{len(file_weights)} layers with weights in the file, "
                                    f"{len(model_layers)} in model {model.name!r}")
    for layer, (file_layer, values) in zip(model_layers, file_weights):
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(v.shape) for v in values]
        if expected != found:
            raise WeightFileError(path, f"layer {file_layer!r} has shapes {found}, "
                                        f"model layer {layer.name!r} expects {expected}")
    for layer, (_, values) in zip(model_layers, file_weights):
        layer.set_weights(values)
