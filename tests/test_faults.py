"""Faults a user of the full data sets meets: two processes on one run, a killed run,
impossible settings, recordings that cannot be ECG in the units declared, a slow first contact."""

import json
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from test_train_export_predict import RECIPE as TINY_MITBIH_RECIPE

# a training process slowed to one epoch per 2 s, so that a second one meets it mid-run
SLOW_TRAINING = """
import sys, time
import keras
import tf_ecg.training.trainer as trainer
from tf_ecg.cli import main

class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(2)

callbacks = trainer._callbacks
trainer._callbacks = lambda *args: callbacks(*args) + [Slow()]
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
    first = subprocess.Popen([sys.executable, "-c", SLOW_TRAINING, *arguments], stdout=subprocess.PIPE,
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
    epochs_before = len(pd.read_csv(run / "history.csv"))
    assert 1 <= epochs_before < 4
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
