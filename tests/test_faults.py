"""Faults a user of the full data sets meets: two processes on one run, a killed run,
impossible settings, recordings that cannot be ECG in the units declared, a slow first contact."""

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from test_train_export_predict import RECIPE as TINY_MITBIH_RECIPE

# a training process that stops moving after its first epoch (recorded), until it is killed
STALLED_TRAINING = """
import sys, time
import keras
import tf_ecg.training.trainer as trainer
from tf_ecg.cli import main

class Stall(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        while True:
            time.sleep(1)

callbacks = trainer._callbacks
trainer._callbacks = lambda *args: callbacks(*args) + [Stall()]
sys.exit(main(sys.argv[1:]))
"""


def _wait_for_epochs(history, count: int, process, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if history.is_file() and len(history.read_text().splitlines()) > count:
            return
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    raise AssertionError(f"no {count} epochs in {seconds} s")


def test_a_second_process_on_a_run_is_refused_and_a_killed_run_resumes(mitdb_dir, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_MITBIH_RECIPE.format(epochs=4))
    run = tmp_path / "run"
    arguments = ["train", str(recipe), "--run-dir", str(run), "--data-root", str(mitdb_dir.parent)]
    first = subprocess.Popen([sys.executable, "-c", STALLED_TRAINING, *arguments], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_epochs(run / "history.csv", 1, first)
        second = subprocess.run([sys.executable, "-m", "tf_ecg.cli", *arguments], capture_output=True, text=True)
        assert second.returncode == 2
        error = second.stderr.strip().splitlines()[-1]
        assert error.startswith(f"tf-ecg: error: {run}: in use by another training process (pid {first.pid} on "
                                f"host {socket.gethostname()}, since 20"), error
    finally:
        first.kill()  # SIGKILL: no clean-up, as a machine that loses power
        first.wait()
    assert len(pd.read_csv(run / "history.csv")) == 1
    resumed = subprocess.run([sys.executable, "-m", "tf_ecg.cli", *arguments], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]  # the killed holder's lock was not left behind
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]  # one header, every epoch once
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["resumed"] is True
    assert not (run / ".lock.json").exists()


def test_a_refused_run_directory_gets_no_lock(mitdb_dir, tmp_path, capsys):
    from tf_ecg.cli import main

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_MITBIH_RECIPE.format(epochs=1))
    assert main(["train", str(recipe), "--run-dir", str(foreign), "--data-root", str(mitdb_dir.parent)]) == 2
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------- recordings that cannot be ECG as declared

from test_errors import beat_model  # noqa: E402,F401  (an exported 360 Hz, 2-lead beat classifier)


@pytest.fixture(scope="module")
def record_100(mitdb_dir):
    from tf_ecg.data.formats.wfdb_records import read_record

    return read_record(mitdb_dir / "100").signal[:360 * 60]  # one minute, mV


@pytest.mark.parametrize("scale, fits", [(200, "uV"),     # MIT-BIH's ADC counts (200 per mV), as int16
                                         (1000, "uV"),    # microvolts
                                         (1e-3, "V")])    # volts
def test_a_real_recording_in_other_units_is_warned_about_and_recorded(beat_model, record_100, tmp_path, capsys,
                                                                      scale, fits):
    from tf_ecg.cli import main

    values = record_100 * scale
    path = tmp_path / "record.npy"
    np.save(path, values.astype(np.int16) if scale == 200 else values.astype(np.float32))
    out = tmp_path / "out.json"
    assert main(["predict", str(beat_model), str(path), "--sampling-rate", "360", "--out", str(out)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tf-ecg: warning:")]
    assert len(warnings) == 1 and f"{path}: amplitude " in warnings[0] and f"pass --units {fits}" in warnings[0]
    assert json.loads(out.read_text())["warnings"] == [warnings[0][len("tf-ecg: warning: "):]]
    # told the right units, the same values are a plausible ECG
    assert main(["predict", str(beat_model), str(path), "--sampling-rate", "360", "--units", fits]) == 0
    assert "warning" not in capsys.readouterr().err


def test_real_recordings_in_their_units_raise_no_warning(beat_model, mitdb_dir, tmp_path, recwarn):
    from tf_ecg.errors import ImplausibleInputWarning
    from tf_ecg.predict import predict_file

    result = predict_file(beat_model, mitdb_dir / "100")
    assert result["warnings"] == [] and not [w for w in recwarn if w.category is ImplausibleInputWarning]


@pytest.mark.parametrize("zeroed, message", [((0, 1), "lead MLII, V1 are flat"), ((1,), "lead V1 is flat")])
def test_a_flat_lead_is_an_error_naming_it(beat_model, record_100, tmp_path, capsys, zeroed, message):
    from conftest import write_record
    from tf_ecg.cli import main

    signal = record_100.copy()
    signal[:, list(zeroed)] = 0.0
    record = write_record(tmp_path, "flat", signal, 360, ["MLII", "V1"])
    out = tmp_path / "out.json"
    assert main(["predict", str(beat_model), str(record), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"tf-ecg: error: {record}: {message} (robust range below 0.01 mV)"), error
    assert not out.exists()
    np.save(tmp_path / "zeros.npy", np.zeros((3600, 2), np.float32))  # all zeros at a valid rate
    assert main(["predict", str(beat_model), str(tmp_path / "zeros.npy"), "--sampling-rate", "360"]) == 2
    assert "lead channel 1, channel 2 are flat" in capsys.readouterr().err


# ---------------------------------------------------------------- impossible settings

@pytest.mark.parametrize("argv, message", [
    (["predict", "model", "x.npy", "--sampling-rate", "0"], "argument --sampling-rate: 0 is out of range: must be > 0"),
    (["predict", "model", "x.npy", "--sampling-rate", "nan"], "argument --sampling-rate: nan is out of range"),
    (["predict", "model", "x.npy", "--batch-size", "0"], "argument --batch-size: 0 is out of range: must be >= 1"),
    (["synth", "--n", "-3", "--out", "o"], "argument --n: -3 is out of range: must be >= 1"),
    (["synth", "--n", "3", "--seed", "-1", "--out", "o"], "argument --seed: -1 is out of range: must be >= 0"),
    (["data", "shards", "mitbih_beats", "--shard-mb", "0"], "argument --shard-mb: 0 is out of range: must be > 0"),
    (["train", "r.toml", "--cpu-replicas", "0"], "argument --cpu-replicas: 0 is out of range: must be >= 1"),
    (["train", "r.toml", "--minutes", "-5"], "argument --minutes: -5 is out of range: must be >= 0"),
    (["train", "r.toml", "--epochs", "two"], "argument --epochs: 'two' is not an integer"),
])
def test_impossible_numbers_are_refused_where_they_enter(argv, message, capsys, tmp_path, monkeypatch):
    from tf_ecg.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("tf_config, message", [
    ({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}},
     "TF_CONFIG: task index 2 does not exist: the cluster's 'worker' list has 2 entries (index 0-1)"),
    ({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}},
     "TF_CONFIG: task type 'chief' is not in the cluster (it has ['worker'])"),
    ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}},
     "TF_CONFIG: cluster must map task types to non-empty lists of host:port"),
])
def test_a_tf_config_that_cannot_be_is_one_line(mitdb_dir, tmp_path, capsys, monkeypatch, tf_config, message):
    from tf_ecg.cli import main

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_MITBIH_RECIPE.format(epochs=1))
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "run"), "--data-root", str(mitdb_dir.parent),
                 "--strategy", "multi-worker"]) == 2
    assert capsys.readouterr().err.strip() == f"tf-ecg: error: {message}"
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the first contact

@pytest.mark.parametrize("argv", [["--help"], ["presets"], ["presets", "ribeiro_code"], ["models"], ["env", "--help"]])
def test_the_first_commands_answer_without_tensorflow(argv):
    program = ("import sys; from tf_ecg.cli import main; code = main(sys.argv[1:]); "
               "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
               "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", program, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and not done.stderr


def test_tensorflow_start_up_lines_stay_quiet_unless_debug():
    done = subprocess.run([sys.executable, "-m", "tf_ecg.cli", "env"], capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout)["tensorflow"]
    assert "absl::InitializeLog" not in done.stderr and "port.cc" not in done.stderr, done.stderr


def test_the_catalogue_names_every_registered_model():
    import tf_ecg.models  # noqa: F401  (registers every model)
    from tf_ecg.registry import _BUILDERS, CATALOGUE

    assert set(_BUILDERS) == set(CATALOGUE)


def test_evaluate_and_predict_trace_once_per_shape(mitdb_dir, tmp_path, capfd):
    """The last, partial batch of an evaluation is traced once, not once per call."""
    from tf_ecg.cli import main

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_MITBIH_RECIPE.format(epochs=1))
    run = tmp_path / "run"
    root = str(mitdb_dir.parent)
    assert main(["train", str(recipe), "--run-dir", str(run), "--data-root", root]) == 0
    for split in ("test", "val", "train"):
        assert main(["evaluate", str(run), "--data-root", root, "--split", split]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "saved")]) == 0
    assert main(["predict", str(tmp_path / "saved"), str(mitdb_dir / "100"), "--batch-size", "7"]) == 0
    assert "retracing" not in capfd.readouterr().err
