"""Per-model maps from an original PyTorch state dict to Keras layers.

A map is a function ``(state_dict) -> {keras_layer_name: [arrays in layer.weights order]}``
registered under the model's registry name. Layouts: Conv1d ``[out, in, k]`` -> Conv1D
``[k, in, out]``; Linear ``[out, in]`` -> Dense ``[in, out]``; BatchNorm γ, β, mean, var.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np

from tf_ecg.errors import WeightFileError

StateDict = dict[str, np.ndarray]
WeightMap = Callable[[StateDict], dict[str, list[np.ndarray]]]

_MAPS: dict[str, WeightMap] = {}


def register_weight_map(model_name: str) -> Callable[[WeightMap], WeightMap]:
    def decorator(function: WeightMap) -> WeightMap:
        _MAPS[model_name] = function
        return function

    return decorator


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    return np.transpose(weight, (2, 1, 0))


def dense_kernel(weight: np.ndarray) -> np.ndarray:
    return np.transpose(weight)


def batch_norm(state: StateDict, prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def apply_torch_state_dict(model: keras.Model, state: StateDict, path: str | Path) -> None:
    if model.name not in _MAPS:
        raise WeightFileError(path, f"no PyTorch weight map for model {model.name!r}; "
                                    f"maps exist for: {', '.join(sorted(_MAPS))}")
    try:
        assignments = _MAPS[model.name](state)
    except KeyError as missing:
        raise WeightFileError(path, f"tensor {missing} missing for model {model.name!r}") from None
    for layer_name, values in assignments.items():
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(v.shape) for v in values]
        if expected != found:
            raise WeightFileError(path, f"layer {layer_name!r}: file shapes {found}, model {expected}")
        layer.set_weights(values)


@register_weight_map("pulse2pulse_generator")
def pulse2pulse_generator_map(state: StateDict) -> dict[str, list[np.ndarray]]:
    from tf_ecg.models.pulse2pulse import DECODER, ENCODER  # layer names are the contract

    assignments = {name: [conv_kernel(state[f"{name}.weight"]), state[f"{name}.bias"]]
                   for name, _, _ in ENCODER}
    for name, *_ in DECODER:
        assignments[name] = [conv_kernel(state[f"{name}.conv1d.weight"]), state[f"{name}.conv1d.bias"]]
    return assignments
