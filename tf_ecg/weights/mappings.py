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
_UNUSED: dict[str, tuple[str, ...]] = {}


def register_weight_map(model_name: str, unused: tuple[str, ...] = ()) -> Callable[[WeightMap], WeightMap]:
    """``unused``: key prefixes of modules the original builds but never runs."""
    def decorator(function: WeightMap) -> WeightMap:
        _MAPS[model_name], _UNUSED[model_name] = function, unused
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


class _ReadTracker(dict):
    """A state dict that remembers which tensors a map read."""

    def __init__(self, state: StateDict):
        super().__init__(state)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        value = super().__getitem__(key)
        self.read.add(key)
        return value


def apply_torch_state_dict(model: keras.Model, state: StateDict, path: str | Path) -> None:
    """Load like PyTorch's strict ``load_state_dict``: every layer assigned, every tensor of
    the file used (BatchNorm's ``num_batches_tracked`` counters aside), shapes equal."""
    if model.name not in _MAPS:
        raise WeightFileError(path, f"no PyTorch weight map for model {model.name!r}; "
                                    f"maps exist for: {', '.join(sorted(_MAPS))}")
    tracked = _ReadTracker(state)
    try:
        assignments = _MAPS[model.name](tracked)
    except KeyError as missing:
        raise WeightFileError(path, f"tensor {missing} missing for model {model.name!r} "
                                    f"(a checkpoint of another model?)") from None
    unused = sorted(key for key in set(state) - tracked.read
                    if not key.endswith("num_batches_tracked") and not key.startswith(_UNUSED[model.name]))
    if unused:
        raise WeightFileError(path, f"{len(unused)} tensor(s) of the file have no place in model {model.name!r} "
                                    f"(first: {unused[0]!r}): a checkpoint of another model or configuration?")
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


# fc1, ppfilter1 and each decoder's ConvTranspose1d are built but not run (upsample=True)
@register_weight_map("pulse2pulse_generator",
                     unused=("fc1.", "ppfilter1.", *(f"deconv_{i}.Conv1dTrans." for i in range(1, 8))))
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


def _conv_with_bias(state: StateDict, key: str) -> list[np.ndarray]:
    return [conv_kernel(state[f"{key}.weight"]), state[f"{key}.bias"]]


def _linear(state: StateDict, key: str) -> list[np.ndarray]:
    return [dense_kernel(state[f"{key}.weight"]), state[f"{key}.bias"]]


def _numbered(state: StateDict, prefix: str) -> list[int]:
    """The indices i of the ``{prefix}.{i}.*`` keys, sorted (ModuleList entries)."""
    return sorted({int(key[len(prefix) + 1:].split(".")[0]) for key in state if key.startswith(f"{prefix}.")})


@register_weight_map("inception1d")
def inception1d_map(state: StateDict) -> dict[str, list[np.ndarray]]:
    """e18 ``Inception1d`` state dict (``layers.0`` backbone, ``layers.1`` fastai head);
    key layout in ``originals/state-dict-keys.md``. Conv layer names follow kernel sizes."""
    assignments = {}
    for d in _numbered(state, "layers.0.im") or [0]:  # [0]: a file of another model names a missing key
        block = f"layers.0.im.{d}"
        assignments[f"block{d}_bottleneck"] = [conv_kernel(state[f"{block}.bottleneck.weight"])]
        for i in (0, 1, 2):
            kernel = state[f"{block}.convs.{i}.weight"]
            assignments[f"block{d}_conv{kernel.shape[-1]}"] = [conv_kernel(kernel)]
        assignments[f"block{d}_pool_conv"] = [conv_kernel(state[f"{block}.conv_bottle.1.weight"])]
        assignments[f"block{d}_bn"] = batch_norm(state, f"{block}.bn_relu.0")
    for j in _numbered(state, "layers.0.sk"):
        assignments[f"shortcut{j}_conv"] = [conv_kernel(state[f"layers.0.sk.{j}.conv.weight"])]
        assignments[f"shortcut{j}_bn"] = batch_norm(state, f"layers.0.sk.{j}.bn")
    assignments["head_bn1"] = batch_norm(state, "layers.1.2")
    assignments["head_dense1"] = _linear(state, "layers.1.4")
    assignments["head_bn2"] = batch_norm(state, "layers.1.6")
    assignments["head_output"] = _linear(state, "layers.1.8")
    return assignments


def _resnext_floor(state: StateDict, torch_name: str, keras_name: str) -> dict[str, list[np.ndarray]]:
    """A floor layer: tenants ``{torch_name}.{t}`` (t = 0..2) -> ``{keras_name}_t{t+1}``."""
    out = {}
    for t in range(3):
        block, tenant = f"{torch_name}.{t}.block", f"{keras_name}_t{t + 1}"
        for number, (conv, bn) in enumerate((("0", "1"), ("3", "4"), ("6", "7")), start=1):
            out[f"{tenant}_conv{number}"] = _conv_with_bias(state, f"{block}.{conv}")
            out[f"{tenant}_bn{number}"] = batch_norm(state, f"{block}.{bn}")
        out[f"{tenant}_resize_conv"] = _conv_with_bias(state, f"{torch_name}.{t}.resize.0")
        out[f"{tenant}_resize_bn"] = batch_norm(state, f"{torch_name}.{t}.resize.1")
    return out


@register_weight_map("mitbih_resnext")
def mitbih_resnext_map(state: StateDict) -> dict[str, list[np.ndarray]]:
    """ResNeXt ``kModel(repeat_count=3, label=5)`` state dict; key layout in
    ``originals/state-dict-keys.md`` (the raw-input branches are ``stage{s}_``)."""
    from tf_ecg.models.mitbih_resnext import BRANCH_CALLS, STAGE_WIDTHS

    out = {"stage0_conv": _conv_with_bias(state, "stage0.0"), "stage0_bn": batch_norm(state, "stage0.1")}
    for stage in range(1, len(STAGE_WIDTHS) + 1):
        for sub in range(1, BRANCH_CALLS + 1):
            out |= _resnext_floor(state, f"stage{stage}_{sub}", f"stage{stage}_{sub}")
        branch = f"stage{stage}_"
        out[f"branch{stage}_conv1"] = _conv_with_bias(state, f"{branch}.0")
        out[f"branch{stage}_bn1"] = batch_norm(state, f"{branch}.1")
        out[f"branch{stage}_conv2"] = _conv_with_bias(state, f"{branch}.2")
        out[f"branch{stage}_bn2"] = batch_norm(state, f"{branch}.4")
        out[f"layer{stage}_path_bn"] = batch_norm(state, f"layer{stage}_path.1")
        out[f"layer{stage}_path_conv"] = _conv_with_bias(state, f"layer{stage}_path.3")
    out |= _resnext_floor(state, "stage4", "stage4")
    out["fc1"] = _linear(state, "fc1")
    out["fc2"] = _linear(state, "fc2")
    return out
