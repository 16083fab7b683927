"""The Keras Pulse2Pulse generator with the official weights against the original's forward pass.

Two references: a NumPy transcription of the PyTorch forward pass (channels first, as
in the package's ``pulse2pulse.py``), always run; and the PyTorch original itself,
run where torch is installed (it is never a dependency of tf_ecg).
"""

import importlib.util
import sys

import numpy as np
import pytest

from tf_ecg.deepfake import generate_ecgs, generator_checkpoint, load_generator
from tf_ecg.weights import find_state_dict, read_torch_checkpoint


def conv1d_ncl(x, weight, bias, stride=1, pad=0):
    """PyTorch Conv1d on (batch, channels, length)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(x, weight.shape[2], axis=2)[:, :, ::stride]
    return np.einsum("bclk,ock->bol", windows, weight, optimize=True) + bias[None, :, None]


def numpy_generator(noise_ncl, state):
    leaky = lambda v: np.where(v > 0, v, 0.01 * v)  # noqa: E731
    skips, x = {}, noise_ncl
    for i, stride in zip(range(1, 7), (2, 5, 2, 5, 5, 5)):
        x = leaky(conv1d_ncl(x, state[f"conv_{i}.weight"], state[f"conv_{i}.bias"], stride, 12))
        skips[i] = x
    for name, factor, skip in (("deconv_1", 5, None), ("deconv_2", 5, 5), ("deconv_3", 5, 4),
                               ("deconv_5", 2, 3), ("deconv_6", 5, 2), ("deconv_7", 2, None)):
        if skip:
            x = np.concatenate([x, skips[skip]], axis=1)
        x = np.repeat(x, factor, axis=2)  # nearest-neighbour upsampling
        x = conv1d_ncl(x, state[f"{name}.conv1d.weight"], state[f"{name}.conv1d.bias"], 1, 12)
        x = np.tanh(x) if name == "deconv_7" else np.maximum(x, 0)
    return x


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(7).uniform(-1, 1, size=(2, 8, 5000)).astype(np.float32)


def test_generator_matches_numpy_transcription_of_the_original(noise):
    state = find_state_dict(read_torch_checkpoint(generator_checkpoint()))
    reference = numpy_generator(noise.astype(np.float64), state)
    keras_out = np.asarray(load_generator()(noise.transpose(0, 2, 1))).transpose(0, 2, 1)
    assert np.abs(keras_out - reference).max() < 1e-4


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed (optional)")
def test_generator_matches_the_pytorch_original(noise):
    import torch

    package_dir = generator_checkpoint().parents[1]
    sys.path.insert(0, str(package_dir.parent))
    try:
        from deepfakeecg.models.pulse2pulse import Pulse2pulseGenerator
    finally:
        sys.path.remove(str(package_dir.parent))
    original = Pulse2pulseGenerator()
    checkpoint = torch.load(generator_checkpoint(), map_location="cpu", weights_only=False)
    original.load_state_dict(checkpoint["stat_dict"])
    original.eval()
    with torch.no_grad():
        reference = original(torch.from_numpy(noise)).numpy()
    keras_out = np.asarray(load_generator()(noise.transpose(0, 2, 1))).transpose(0, 2, 1)
    assert np.abs(keras_out - reference).max() < 1e-4


def test_generate_ecgs_is_seeded_and_in_microvolts():
    first, again = generate_ecgs(3, seed=11, progress=False), generate_ecgs(3, seed=11, progress=False)
    other = generate_ecgs(3, seed=12, progress=False)
    assert first.shape == (3, 5000, 8) and first.dtype == np.int32
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.abs(first).max() < 6000  # tanh * 6000, truncated
    # Lead II of a DeepFake ECG has R waves of the order of a millivolt.
    assert 300 < np.percentile(np.abs(first[:, :, 1]), 99.9) < 6000


@pytest.mark.parametrize("file_format", ["wfdb", "npy"])
def test_synth_command_writes_readable_records(tmp_path, file_format):
    from tf_ecg.cli import main
    from tf_ecg.data.formats.wfdb_records import read_record

    out = tmp_path / "synth"
    assert main(["synth", "--n", "3", "--seed", "5", "--out", str(out), "--format", file_format]) == 0
    expected = generate_ecgs(3, seed=5, progress=False)
    if file_format == "npy":
        np.testing.assert_array_equal(np.load(out / "deepfake_000002.npy"), expected[2])
    else:
        record = read_record(out / "deepfake_000002", sampling_rate=500, num_leads=8)
        assert record.leads == ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
        np.testing.assert_allclose(record.signal * 1000, expected[2], atol=1e-3)  # mV in the reader
    assert not [p for p in out.iterdir() if p.name.startswith(".synth-")]


def test_wfdb_records_are_the_bytes_wfdb_writes(tmp_path):
    """synth writes records itself (wfdb.wrsamp spends ~10 ms a record on bookkeeping):
    header and samples must be byte for byte what wfdb writes, for any values in 16 bits."""
    import wfdb

    from tf_ecg.deepfake import LEADS, SAMPLING_RATE, WFDB_COMMENT, write_wfdb_record

    ecg = np.random.default_rng(3).integers(-32768, 32768, (5000, 8)).astype(np.int32)
    ecg[:, 3] = 0  # a flat lead
    ecg[0, 0], ecg[1, 0] = -32768, 32767
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(), theirs.mkdir()
    write_wfdb_record(ours, "rec", ecg)
    wfdb.wrsamp("rec", fs=SAMPLING_RATE, units=["mV"] * 8, sig_name=list(LEADS), d_signal=ecg.astype(np.int64),
                fmt=["16"] * 8, adc_gain=[1000.0] * 8, baseline=[0] * 8, write_dir=str(theirs), comments=[WFDB_COMMENT])
    for suffix in (".hea", ".dat"):
        assert (ours / f"rec{suffix}").read_bytes() == (theirs / f"rec{suffix}").read_bytes(), suffix
    with pytest.raises(ValueError, match="within 16 bits"):
        write_wfdb_record(ours, "too_big", ecg * 2)
