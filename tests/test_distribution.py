"""The [runtime] of a recipe: strategies (one device, mirrored over logical CPU replicas),
mixed precision with float32 outputs, and what a run records about where it ran.

Splitting the CPU into logical devices must happen before TensorFlow starts, so the
multi-replica runs are fresh ``tf-ecg`` processes; the multi-worker run is two of them
on 127.0.0.1.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_ecg.cli import main
from tf_ecg.config import load_recipe
from tf_ecg.errors import RecipeError

from test_shards import streamed_recipe

RECIPE = """
name = "tiny-mitbih"
[data]
source = "mitbih_beats"
records = ["101", "100"]
[model]
name = "loo_conv1d"
options = { num_classes = 5 }
[training]
task = "multiclass"
outputs = "logits"
loss = { name = "SparseCategoricalCrossentropy", from_logits = true }
optimizer = { name = "adam", learning_rate = 0.001 }
batch_size = 64
epochs = 1
seed = 0
"""


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(RECIPE)
    return path


def _tf_ecg(*args):
    """``tf-ecg ARGS`` in a fresh process: (exit status, stderr)."""
    done = subprocess.run([sys.executable, "-m", "tf_ecg.cli", *map(str, args)], capture_output=True, text=True)
    return done.returncode, done.stderr


def test_mirrored_over_two_cpu_replicas_reaches_the_one_device_weights(mitdb_dir, recipe_file, tmp_path):
    """One epoch (36 steps of a global batch of 64) on one device, and split over two
    logical CPUs (2 x 32): the same weights to 1e-5 (float sums in another order)."""
    common = ["train", recipe_file, "--data-root", mitdb_dir.parent]
    assert _tf_ecg(*common, "--run-dir", tmp_path / "one", "--strategy", "one-device")[0] == 0
    assert _tf_ecg(*common, "--run-dir", tmp_path / "two", "--strategy", "mirrored", "--cpu-replicas", 2)[0] == 0
    one, two = (keras.models.load_model(tmp_path / run / "final.keras") for run in ("one", "two"))
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert max(np.abs(w).max() for w in one.get_weights()) > 0.1  # trained, not a trivial match
    runtime = json.loads((tmp_path / "two" / "run.json").read_text())["runtime"]
    assert runtime["strategy"] == "MirroredStrategy" and runtime["replicas"] == 2
    assert runtime["global_batch"] == 64 and runtime["per_replica_batch"] == 32 and len(runtime["devices"]) == 2

    code, error = _tf_ecg(*common, "--run-dir", tmp_path / "odd", "--cpu-replicas", 2, "--set", "training.batch_size=63")
    assert code == 2 and "batch_size = 63 is the global batch; it must be a multiple of the 2 replicas" in error
    assert not (tmp_path / "odd").exists()


def test_mixed_bfloat16_trains_and_serves_float32(mitdb_dir, recipe_file, tmp_path):
    assert main(["train", str(recipe_file), "--data-root", str(mitdb_dir.parent), "--run-dir", str(tmp_path / "run"),
                 "--mixed-precision", "mixed_bfloat16"]) == 0
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    model = keras.models.load_model(tmp_path / "run" / "final.keras")
    assert model.get_layer("conv2").compute_dtype == "bfloat16" and model.output.dtype == "float32"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["runtime"]["mixed_precision"] == "mixed_bfloat16"
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert report["accuracy"] > 0.5
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "saved")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "saved"))  # kept: its function needs its variables
    served = loaded.serve(tf.zeros((3, 160, 2)))
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy().sum(axis=1), 1, atol=1e-5)


def test_runtime_section_is_checked_and_does_not_block_a_resume(recipe_file, tmp_path):
    with pytest.raises(RecipeError, match=r"runtime.strategy = 'many-gpus': must be one of"):
        load_recipe(recipe_file, {"runtime.strategy": "many-gpus"})
    with pytest.raises(RecipeError, match=r"runtime.cpu_replicas = 0: must be a positive integer"):
        load_recipe(recipe_file, {"runtime.cpu_replicas": 0})
    from tf_ecg.training.trainer import _check_run_dir

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.toml").write_text(load_recipe(recipe_file).to_toml())
    moved = load_recipe(recipe_file, {"runtime.strategy": "mirrored", "runtime.mixed_precision": "mixed_float16"})
    assert _check_run_dir(moved, run_dir, restart=False) == "resume"  # same run, other hardware


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# a worker whose run is cut after its second epoch, as both workers of a job would be
INTERRUPTED = """
import sys
import keras
import tf_ecg.training.trainer as trainer
from tf_ecg.cli import main

class PowerCut(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise SystemExit(3)

callbacks = trainer._callbacks
trainer._callbacks = lambda *args: callbacks(*args) + [PowerCut()]
sys.exit(main(sys.argv[1:]))
"""


def _two_workers(arguments: list, interrupted: bool = False) -> tuple[list[int], str]:
    """``tf-ecg ARGUMENTS --strategy multi-worker`` as workers 0 and 1 of a cluster on
    127.0.0.1: their exit statuses and the end of their standard errors."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    program = ["-c", INTERRUPTED] if interrupted else ["-m", "tf_ecg.cli"]
    workers = [subprocess.Popen([sys.executable, *program, *map(str, arguments), "--strategy", "multi-worker"],
                                env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                            "task": {"type": "worker", "index": i}})},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    errors = [worker.communicate(timeout=600)[1] for worker in workers]
    return [worker.returncode for worker in workers], errors[0][-2000:] + errors[1][-2000:]


@pytest.mark.parametrize("streamed", [False, True], ids=["arrays", "shards"])
def test_two_workers_on_localhost_train_as_one_process_would(mitdb_dir, recipe_file, tmp_path, streamed):
    """Two ``tf-ecg train --strategy multi-worker`` processes joined by TF_CONFIG train one
    epoch together (2 x 32 of each global batch of 64), from arrays and from shards: the
    chief's run directory is complete, the other worker leaves nothing behind, and the
    weights are those of one process training alone (to 1e-5: the same sums in another
    order)."""
    if streamed:
        assert _tf_ecg("data", "shards", "mitbih_beats", "--data-root", mitdb_dir.parent, "--out", tmp_path / "shards",
                       "--set", 'data.records=["101", "100"]', "--shard-mb", 0.3)[0] == 0
        recipe_file = tmp_path / "streamed.toml"
        recipe_file.write_text(streamed_recipe(tmp_path / "shards"))
    common = ["train", recipe_file, "--data-root", mitdb_dir.parent]
    codes, errors = _two_workers([*common, "--run-dir", tmp_path / "runs" / "together"])
    assert codes == [0, 0], errors
    # multi-worker drops each epoch's last partial batch (workers step in lockstep): so does the single run
    assert _tf_ecg(*common, "--run-dir", tmp_path / "alone", "--set", "training.drop_remainder=true")[0] == 0

    together = tmp_path / "runs" / "together"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["together"]  # worker 1's directory is gone
    for name in ("run.json", "recipe.toml", "history.csv", "best.keras", "final.keras", "test_metrics.json", "logs"):
        assert (together / name).exists(), name
    runtime = json.loads((together / "run.json").read_text())["runtime"]
    assert runtime["workers"] == 2 and runtime["replicas"] == 2 and runtime["per_replica_batch"] == 32
    assert runtime["drop_remainder"] is True
    one, two = (keras.models.load_model(run / "final.keras") for run in (tmp_path / "alone", together))
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert max(np.abs(w).max() for w in one.get_weights()) > 0.1
    assert json.loads((together / "run.json").read_text())["data"]["source"] == ("shards" if streamed else "mitbih_beats")


def test_a_cut_multi_worker_job_resumes_on_every_worker(mitdb_dir, recipe_file, tmp_path):
    """Both workers are cut after epoch 1 of 3; the same command again resumes each from its
    own BackupAndRestore state (a worker starting over would wait on the other and hang)."""
    run = tmp_path / "runs" / "job"
    arguments = ["train", recipe_file, "--data-root", mitdb_dir.parent, "--run-dir", run, "--epochs", 3]
    codes, errors = _two_workers(arguments, interrupted=True)
    assert codes == [3, 3], errors
    assert (run / "backup").is_dir() and (tmp_path / "runs" / ".job.worker-1" / "backup").is_dir()
    codes, errors = _two_workers(arguments)
    assert codes == [0, 0], errors
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1, 2]  # 0-1 before the cut, 2 after
    assert json.loads((run / "run.json").read_text())["resumed"] is True and (run / "test_metrics.json").is_file()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["job"]


def test_multi_worker_needs_tf_config(mitdb_dir, recipe_file, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", str(recipe_file), "--data-root", str(mitdb_dir.parent), "--run-dir", str(tmp_path / "run"),
                 "--strategy", "multi-worker"]) == 2
    assert "needs TF_CONFIG" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_learning_rate_scaling_is_explicit_and_the_median_bias_survives_mixed_precision(recipe_file):
    from tf_ecg.training.distribution import Runtime
    from tf_ecg.training.compiling import compile_model
    from tf_ecg.training.trainer import start_at_median

    recipe = load_recipe(recipe_file, {"runtime.learning_rate_scaling": "linear"})
    runtime = Runtime(tf.distribute.get_strategy(), recipe.runtime)
    assert runtime.learning_rate(1e-3) == 1e-3 * runtime.replicas
    assert Runtime(runtime.strategy, load_recipe(recipe_file).runtime).learning_rate(1e-3) == 1e-3
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = compile_model(recipe, 5, (160, 2))
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.output.dtype == "float32" and model.layers[-1].name == "float32_0"
    start_at_median(model, np.median([[1.0, 2, 3, 4, 5], [3, 4, 5, 6, 7]], axis=0))
    np.testing.assert_allclose(model.get_layer("logits").bias.numpy(), [2, 3, 4, 5, 6])


def test_env_reports_devices_and_the_runtime(capsys):
    assert main(["env"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["tensorflow"] == tf.__version__ and env["runtime"]["replicas"] >= 1
    assert env["cpu"]["usable_cores"] >= 1 and env["runtime"]["devices"]
    assert env["cpu_kernels"] in ("oneDNN", "Eigen")


@pytest.mark.parametrize("setting, kernels", [("0", "Eigen"), ("1", "oneDNN"), (None, "oneDNN")])
def test_cpu_kernels_follow_tensorflows_onednn_switch(setting, kernels):
    """A user's TF_ENABLE_ONEDNN_OPTS is kept; unset, tf_ecg turns oneDNN on on x86 CPUs
    (TensorFlow would leave it off on those without AVX-512 VNNI). BatchNorm picks its
    formulation by these kernels: the report must be what runs."""
    import platform

    if setting is None and platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("tf_ecg leaves TensorFlow's choice alone off x86")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    report = "import os; from tf_ecg.runtime import cpu_kernels; print(os.environ['TF_ENABLE_ONEDNN_OPTS'], cpu_kernels())"
    done = subprocess.run([sys.executable, "-c", report], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == [setting or "1", kernels]


def test_a_last_batch_smaller_than_the_replicas_is_refused(recipe_file):
    """A last val batch of 1 over 2 replicas would hand one replica nothing."""
    from types import SimpleNamespace

    from tf_ecg.training.trainer import _check_last_batches

    recipe = load_recipe(recipe_file)  # global batch 64
    sizes = {"val": 129, "test": 128}
    with pytest.raises(RecipeError, match="the val split's last batch holds 1 of 129 examples, fewer than the 2 replicas"):
        _check_last_batches(recipe, SimpleNamespace(size=sizes.get), replicas=2)
    _check_last_batches(recipe, SimpleNamespace(size={"val": 130, "test": 128}.get), replicas=2)
