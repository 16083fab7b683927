"""The torch-free reader on the real checkpoints (zip and legacy formats)."""

import numpy as np
import pytest

from tf_ecg.deepfake import generator_checkpoint
from tf_ecg.errors import WeightFileError
from tf_ecg.weights import find_state_dict, read_torch_checkpoint

SUPERVISED = "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"
COMPARATOR = "effnetv2_ecg_comparator_v5_l_xxxs_20240111_epoch100_4e-3.pth"


@pytest.mark.parametrize("file, entries, gamma, var, batches", [
    (SUPERVISED, 165, 0.9284272, 21561.79, 2173), (COMPARATOR, 177, 0.7131822, 21478.84, 7380)])
def test_zip_checkpoint_values(originals, file, entries, gamma, var, batches):
    checkpoint = read_torch_checkpoint(originals / "weights" / "glucose" / file)
    assert set(checkpoint) == {"epoch", "model", "acc", "seed", "optimizer", "scheduler"}
    state = find_state_dict(checkpoint)
    assert len(state) == entries
    assert all(not key.startswith("module.") for key in state)
    assert state["normal_proprecessing.weight"][0] == pytest.approx(gamma, rel=1e-6)
    assert state["normal_proprecessing.running_var"][0] == pytest.approx(var, rel=1e-6)
    assert state["normal_proprecessing.num_batches_tracked"] == batches
    assert state["normal_proprecessing.num_batches_tracked"].dtype == np.int64


def test_zip_checkpoint_keeps_non_tensor_fields(originals):
    checkpoint = read_torch_checkpoint(originals / "weights" / "glucose" / COMPARATOR)
    assert checkpoint["epoch"] == 89
    assert checkpoint["acc"] == pytest.approx(97.58522727272727)
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0023438582, rel=1e-6)


def test_legacy_checkpoint_of_the_deepfake_generator():
    state = find_state_dict(read_torch_checkpoint(generator_checkpoint()))
    assert len(state) == 40
    assert list(state)[:2] == ["fc1.weight", "fc1.bias"]
    assert state["deconv_2.conv1d.weight"].shape == (150, 500, 25)
    assert state["conv_1.weight"].dtype == np.float32
    total = sum(v.size for v in state.values())
    assert total == 10_590_997  # spec: all stored values, used and unused


def test_truncated_legacy_checkpoint_is_a_clear_error(tmp_path):
    broken = tmp_path / "g_stat.pt"
    broken.write_bytes(generator_checkpoint().read_bytes()[:5_000_000])
    with pytest.raises(WeightFileError, match="truncated"):
        read_torch_checkpoint(broken)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(WeightFileError, match="not a torch checkpoint"):
        read_torch_checkpoint(text)
    with pytest.raises(WeightFileError, match="file not found"):
        read_torch_checkpoint(tmp_path / "missing.pth")
