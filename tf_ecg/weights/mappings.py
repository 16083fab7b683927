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


def _nested_layer(model: keras.Model, path: str) -> keras.layers.Layer:
    """'encoder/stem_conv': layer stem_conv of the sub-model encoder."""
    layer = model
    for part in path.split("/"):
        layer = layer.get_layer(part)
    return layer


def _weighted_layer_paths(model: keras.Model, prefix: str = ""):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _weighted_layer_paths(layer, f"{prefix}{layer.name}/")
        elif layer.weights:
            yield f"{prefix}{layer.name}"


def depthwise_kernel(weight: np.ndarray) -> np.ndarray:
    return np.transpose(weight, (2, 0, 1))  # [C, 1, k] -> [k, C, 1]


def apply_torch_state_dict(model: keras.Model, state: StateDict, path: str | Path) -> None:
    if model.name not in _MAPS:
        raise WeightFileError(path, f"no PyTorch weight map for model {model.name!r}; "
                                    f"maps exist for: {', '.join(sorted(_MAPS))}")
    try:
        assignments = _MAPS[model.name](state)
    except KeyError as missing:
        raise WeightFileError(path, f"tensor {missing} missing for model {model.name!r}") from None
    unassigned = sorted(set(_weighted_layer_paths(model)) - set(assignments))
    if unassigned:
        raise WeightFileError(path, f"the weight map leaves {len(unassigned)} layer(s) of {model.name!r} "
                                    f"unassigned: {unassigned[:5]}")
    for layer_name, values in assignments.items():
        layer = _nested_layer(model, layer_name)
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


def _conv_bn(state: StateDict, conv: str, bn: str, keras_name: str) -> dict[str, list[np.ndarray]]:
    return {f"{keras_name}_conv": [conv_kernel(state[f"{conv}.weight"])], f"{keras_name}_bn": batch_norm(state, bn)}


def _effnet_blocks(state: StateDict, torch_seq: str, keras_prefix: str, config) -> dict:
    """Blocks 1.. of an EfficientNetV2-1D feature sequence (index 0 is the stem)."""
    out = {}
    for index, (*_, use_se) in enumerate(config, start=1):
        t, k = f"{torch_seq}.{index}.conv", f"{keras_prefix}{index}"
        if use_se:
            out |= _conv_bn(state, f"{t}.0", f"{t}.1", f"{k}_expand")
            out[f"{k}_dw_conv"] = [depthwise_kernel(state[f"{t}.3.weight"])]
            out[f"{k}_dw_bn"] = batch_norm(state, f"{t}.4")
            for torch_fc, keras_fc in (("0", "reduce"), ("2", "expand")):
                out[f"{k}_se_{keras_fc}"] = [dense_kernel(state[f"{t}.6.fc.{torch_fc}.weight"]),
                                             state[f"{t}.6.fc.{torch_fc}.bias"]]
            out |= _conv_bn(state, f"{t}.7", f"{t}.8", f"{k}_project")
        else:
            out |= _conv_bn(state, f"{t}.0", f"{t}.1", f"{k}_fused")
            out |= _conv_bn(state, f"{t}.3", f"{t}.4", f"{k}_project")
    return out


def _effnet_head(state: StateDict) -> dict:
    return {**_conv_bn(state, "conv.0", "conv.1", "head"),
            "classifier": [dense_kernel(state["classifier.weight"]), state["classifier.bias"]]}


def _prefix(assignments: dict, sub_model: str) -> dict:
    return {f"{sub_model}/{name}": values for name, values in assignments.items()}


@register_weight_map("effnetv2_ecg_l_xxxs")
def effnetv2_ecg_l_xxxs_map(state: StateDict) -> dict[str, list[np.ndarray]]:
    from tf_ecg.models.effnetv2 import SUPERVISED_L_XXXS

    return {"input_bn": batch_norm(state, "normal_proprecessing"),
            **_conv_bn(state, "features.0.0", "features.0.1", "stem"),
            **_effnet_blocks(state, "features", "block", SUPERVISED_L_XXXS), **_effnet_head(state)}


@register_weight_map("effnetv2_comparator_v5")
def effnetv2_comparator_v5_map(state: StateDict) -> dict[str, list[np.ndarray]]:
    from tf_ecg.models.effnetv2 import COMPARATOR_L_XXXS, ENCODER_L_XXXS

    # The shipped checkpoint spells the sequences features_*, the published class feature_*.
    encoder = "features_encoder" if "features_encoder.0.0.weight" in state else "feature_encoder"
    comparator = "features_comparator" if "features_comparator.0.0.weight" in state else "feature_comparator"
    encoder_weights = {"input_bn": batch_norm(state, "normal_proprecessing"),
                       **_conv_bn(state, f"{encoder}.0.0", f"{encoder}.0.1", "stem"),
                       **_effnet_blocks(state, encoder, "block", ENCODER_L_XXXS)}
    head_weights = {**_conv_bn(state, "cat.0", "cat.1", "cat"),
                    **_conv_bn(state, f"{comparator}.0.0", f"{comparator}.0.1", "comparator_stem"),
                    **_effnet_blocks(state, comparator, "comparator_block", COMPARATOR_L_XXXS),
                    **_effnet_head(state)}
    return {**_prefix(encoder_weights, "encoder"), **_prefix(head_weights, "comparator_head")}
