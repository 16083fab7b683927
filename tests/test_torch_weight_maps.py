"""PyTorch weight maps of e18's Inception1d and the ResNeXt kModel.

Without torch: the maps read exactly the keys of ``originals/state-dict-keys.md`` (86 and
1,166 tensors) and refuse other files with the first missing or surplus tensor named.
With torch (optional): a ``torch.save(model.state_dict())`` file of modules written from
the specs loads into the ports, which then give the same outputs (kModel's end to end,
through its preset's SavedModel, in test_presets.py).
"""

import importlib.util

import numpy as np
import pytest

from tf_ecg import build_model
from tf_ecg.errors import WeightFileError
from tf_ecg.weights import load_original_weights
from tf_ecg.weights.mappings import apply_torch_state_dict

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed (optional)")


def _batch_norm_keys(prefix, n):
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def inception1d_keys(num_classes):
    """Key -> shape, from the table of originals/state-dict-keys.md."""
    keys = {}
    for d in range(6):
        ni, block = 8 if d == 0 else 128, f"layers.0.im.{d}"
        keys[f"{block}.bottleneck.weight"] = (32, ni, 1)
        keys |= {f"{block}.convs.{i}.weight": (32, 32, k) for i, k in enumerate((39, 19, 9))}
        keys[f"{block}.conv_bottle.1.weight"] = (32, ni, 1)
        keys |= _batch_norm_keys(f"{block}.bn_relu.0", 128)
    for j, ni in enumerate((8, 128)):
        keys[f"layers.0.sk.{j}.conv.weight"] = (128, ni, 1)
        keys |= _batch_norm_keys(f"layers.0.sk.{j}.bn", 128)
    keys |= _batch_norm_keys("layers.1.2", 256) | _batch_norm_keys("layers.1.6", 128)
    keys |= {"layers.1.4.weight": (128, 256), "layers.1.4.bias": (128,),
             "layers.1.8.weight": (num_classes, 128), "layers.1.8.bias": (num_classes,)}
    return keys


def _conv_keys(prefix, out, ni, k):
    return {f"{prefix}.weight": (out, ni, k), f"{prefix}.bias": (out,)}


def resnext_keys():
    keys = _conv_keys("stage0.0", 64, 1, 7) | _batch_norm_keys("stage0.1", 64)

    def floor(name, ni, mid, out):
        width, result = (mid // 64) * 128, {}
        for t in range(3):
            block, n_in = f"{name}.{t}.block", ni if t == 0 else out
            result |= _conv_keys(f"{block}.0", width, n_in, 1) | _batch_norm_keys(f"{block}.1", width)
            result |= _conv_keys(f"{block}.3", width, width // 32, 3) | _batch_norm_keys(f"{block}.4", width)
            result |= _conv_keys(f"{block}.6", out, width, 1) | _batch_norm_keys(f"{block}.7", out)
            result |= _conv_keys(f"{name}.{t}.resize.0", out, n_in, 1) | _batch_norm_keys(f"{name}.{t}.resize.1", out)
        return result

    previous = 64
    for s, (mid, out) in enumerate(((64, 256), (128, 512), (256, 1024)), start=1):
        for n in range(1, 5):
            keys |= floor(f"stage{s}_{n}", previous, mid, out)
            previous = out
        keys |= _conv_keys(f"stage{s}_.0", 64, 1, 7) | _batch_norm_keys(f"stage{s}_.1", 64)
        keys |= _conv_keys(f"stage{s}_.2", out, 64, 1) | _batch_norm_keys(f"stage{s}_.4", out)
        keys |= _batch_norm_keys(f"layer{s}_path.1", out) | _conv_keys(f"layer{s}_path.3", out, out, 1)
    keys |= floor("stage4", 1024, 512, 2048)
    return keys | {"fc1.weight": (32, 2048), "fc1.bias": (32,), "fc2.weight": (5, 32), "fc2.bias": (5,)}


def random_state(keys, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (np.asarray(7, np.int64) if k.endswith("num_batches_tracked") else
                rng.uniform(0.5, 1.5, shape).astype(np.float32)) for k, shape in keys.items()}


def test_key_tables_have_the_documented_sizes():
    assert len(inception1d_keys(1)) == 86
    assert len(resnext_keys()) == 1166


@pytest.mark.parametrize("num_classes", [1, 5])
def test_inception1d_map_places_every_documented_tensor(num_classes):
    model = build_model("inception1d", num_outputs=num_classes, input_length=64)
    state = random_state(inception1d_keys(num_classes))
    apply_torch_state_dict(model, state, "user.pth")
    block = model.get_layer("block3_conv19")
    np.testing.assert_array_equal(block.kernel.numpy(), state["layers.0.im.3.convs.1.weight"].transpose(2, 1, 0))
    bn = model.get_layer("shortcut1_bn")
    np.testing.assert_array_equal(bn.moving_variance.numpy(), state["layers.0.sk.1.bn.running_var"])
    np.testing.assert_array_equal(model.get_layer("head_output").kernel.numpy(), state["layers.1.8.weight"].T)
    np.testing.assert_array_equal(model.get_layer("head_bn1").beta.numpy(), state["layers.1.2.bias"])


def test_resnext_map_places_every_documented_tensor():
    model = build_model("mitbih_resnext")
    state = random_state(resnext_keys())
    apply_torch_state_dict(model, state, "user.pth")
    grouped = model.get_layer("stage2_3_t2_conv2")
    np.testing.assert_array_equal(grouped.kernel.numpy(), state["stage2_3.1.block.3.weight"].transpose(2, 1, 0))
    np.testing.assert_array_equal(model.get_layer("branch3_bn2").moving_mean.numpy(), state["stage3_.4.running_mean"])
    np.testing.assert_array_equal(model.get_layer("branch3_conv2").bias.numpy(), state["stage3_.2.bias"])
    np.testing.assert_array_equal(model.get_layer("layer1_path_conv").bias.numpy(), state["layer1_path.3.bias"])
    np.testing.assert_array_equal(model.get_layer("stage4_t3_resize_bn").gamma.numpy(), state["stage4.2.resize.1.weight"])


def test_a_file_of_another_model_names_the_first_missing_tensor():
    with pytest.raises(WeightFileError, match=r"user\.pth.*'layers\.0\.im\.0\.bottleneck\.weight' missing"):
        apply_torch_state_dict(build_model("inception1d", input_length=64), random_state(resnext_keys()), "user.pth")
    state = random_state(inception1d_keys(1))
    del state["layers.0.im.4.convs.2.weight"]
    with pytest.raises(WeightFileError, match=r"'layers\.0\.im\.4\.convs\.2\.weight' missing"):
        apply_torch_state_dict(build_model("inception1d", input_length=64), state, "user.pth")


def test_surplus_tensors_and_wrong_class_counts_are_refused():
    state = random_state(inception1d_keys(1)) | {"layers.1.9.weight": np.zeros((1, 1), np.float32)}
    with pytest.raises(WeightFileError, match=r"1 tensor\(s\) of the file have no place.*layers\.1\.9\.weight"):
        apply_torch_state_dict(build_model("inception1d", input_length=64), state, "user.pth")
    with pytest.raises(WeightFileError, match=r"head_output.*\(128, 1\).*\(128, 5\)"):
        apply_torch_state_dict(build_model("inception1d", num_outputs=5, input_length=64),
                               random_state(inception1d_keys(1)), "user.pth")


@needs_torch
@pytest.mark.parametrize("num_classes", [1, 5])
def test_inception1d_checkpoint_gives_the_originals_outputs(num_classes, tmp_path):
    import torch
    from torch_references import Inception1d, randomise_batch_norms

    torch.manual_seed(num_classes)
    original = randomise_batch_norms(Inception1d(num_classes))
    torch.save(original.state_dict(), tmp_path / "inception1d.pth")
    x = np.random.default_rng(1).uniform(0, 1, (3, 8, 1000)).astype(np.float32)
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()
    model = load_original_weights(build_model("inception1d", num_outputs=num_classes, input_length=1000),
                                  tmp_path / "inception1d.pth")
    np.testing.assert_allclose(model.predict(x.transpose(0, 2, 1), verbose=0), expected, rtol=1e-4, atol=1e-4)


@needs_torch
def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    import torch
    from torch_references import Inception1d

    torch.save(Inception1d(1).state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="cut.pth"):
        load_original_weights(build_model("inception1d", input_length=64), tmp_path / "cut.pth")
