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
    from tf_ecg.data.wfdb_records import read_record

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
