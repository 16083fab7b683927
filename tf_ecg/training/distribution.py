"""Where a run executes: logical CPU replicas, distribution strategy, precision, XLA.

``runtime_context(recipe.runtime)`` is entered around building, compiling and fitting a
model. Under it a recipe runs unchanged on one CPU or on several GPUs of a host
(``mirrored``) or on several hosts (``multi-worker``, one process per host, driven by
``TF_CONFIG``); the global batch is split evenly over the replicas, and whatever the
runtime changes (per-replica batch, learning-rate scaling, devices, precision) is printed
and recorded in ``run.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from tf_ecg.config import RuntimeConfig
from tf_ecg.errors import RecipeError, RunError
from tf_ecg.runtime import backend_devices

if TYPE_CHECKING:
    import tensorflow as tf


def split_host_cpu(replicas: int) -> None:
    """Make the host CPU appear as ``replicas`` logical devices (before TensorFlow starts)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if replicas <= 1 and not current or current and len(current) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        raise RunError(None, f"cpu_replicas = {replicas}: the host CPU can be split only before TensorFlow "
                             f"has started (it now has {len(current) or 1} logical CPU device(s)); set it on "
                             f"the command line (--cpu-replicas) or first thing in a fresh process") from None


def make_strategy(runtime: RuntimeConfig) -> tf.distribute.Strategy:
    """The strategy a runtime asks for; ``auto``: mirrored over every GPU when there are
    two or more (or over the logical CPUs of ``cpu_replicas``), else TensorFlow's default.
    Under the JAX and PyTorch backends: one device (the backend's own, :class:`OneBackendDevice`);
    what only tf.distribute does is refused."""
    if keras.backend.backend() != "tensorflow":
        check_single_device_backend(runtime)
        return OneBackendDevice()
    import tensorflow as tf

    if runtime.strategy == "multi-worker":
        cluster_task(runtime)  # TF_CONFIG is checked before the collective starts
        if runtime.cpu_replicas > 1:
            raise RecipeError(None, "runtime.cpu_replicas splits one host's CPU for 'mirrored'; under "
                                    "'multi-worker' each worker process computes on its own devices")
        return tf.distribute.MultiWorkerMirroredStrategy()
    split_host_cpu(runtime.cpu_replicas)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    name = runtime.strategy
    if name == "auto":
        name = "mirrored" if len(devices) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    if name == "mirrored":
        # several logical CPUs have no NCCL: reduce on one device
        cross_device = None if gpus else tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device)
    raise RecipeError(None, f"runtime.strategy = {name!r}: unknown")


class OneBackendDevice:
    """What a run on JAX or PyTorch executes with in place of a tf.distribute strategy: the
    backend's own first device, one replica, no scope to enter (TensorFlow not needed)."""
    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def check_single_device_backend(runtime: RuntimeConfig) -> None:
    """A runtime that needs tf.distribute, under another Keras backend: one line naming the
    backend and what to do instead."""
    backend = keras.backend.backend()
    asked = [setting for setting, needs_tf in (
        (f"runtime.strategy = {runtime.strategy!r}", runtime.strategy != "auto"),
        (f"runtime.cpu_replicas = {runtime.cpu_replicas}", runtime.cpu_replicas > 1),
        ("runtime.sync_batch_norm = true", runtime.sync_batch_norm)) if needs_tf]
    if asked:
        raise RecipeError(None, f"{', '.join(asked)} needs tf.distribute, which the {backend} backend does not "
                                f"run: train with KERAS_BACKEND=tensorflow for it, or leave runtime.strategy "
                                f"'auto' (one device) under {backend}")


def cluster_task(runtime: RuntimeConfig) -> tuple[str, int] | None:
    """This process's (task type, index) in a multi-worker cluster (from ``TF_CONFIG``);
    None when the run is not multi-worker."""
    if runtime.strategy != "multi-worker":
        return None
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        task, cluster = config["task"], config["cluster"]
        kind, index = str(task["type"]), int(task["index"])
    except KeyError:
        raise RunError(None, "runtime.strategy = 'multi-worker' needs TF_CONFIG with the cluster and this "
                             "process's task, e.g. {\"cluster\": {\"worker\": [\"host1:12345\", "
                             "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}") from None
    except (ValueError, TypeError):
        raise RunError(None, "TF_CONFIG is not the JSON of a cluster and a task") from None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) and v for v in cluster.values()):
        raise RunError(None, "TF_CONFIG: cluster must map task types to non-empty lists of host:port")
    if kind not in cluster:
        raise RunError(None, f"TF_CONFIG: task type {kind!r} is not in the cluster (it has {sorted(cluster)})")
    if not 0 <= index < len(cluster[kind]):
        raise RunError(None, f"TF_CONFIG: task index {index} does not exist: the cluster's {kind!r} list has "
                             f"{len(cluster[kind])} entries (index 0-{len(cluster[kind]) - 1})")
    return kind, index


def worker_directory(run_dir: Path, runtime: RuntimeConfig) -> Path:
    """Where this process writes: the run directory for the chief (or a single process);
    for another worker of a multi-worker run, a directory of its own beside the run
    directory (its checkpoints, BackupAndRestore state and logs, removed when the run
    finishes), so that the chief alone writes the run directory. The chief is the task
    named "chief", else worker 0."""
    task = cluster_task(runtime)
    if task is None:
        return run_dir
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
    chief = ("chief", 0) if "chief" in cluster else ("worker", 0)
    return run_dir if task == chief else run_dir.parent / f".{run_dir.name}.{task[0]}-{task[1]}"


def fit_under_multi_worker(model: keras.Model) -> None:
    """Let ``model.fit`` / ``predict`` run under MultiWorkerMirroredStrategy. Keras 3.15's
    TensorFlow trainer fails there twice (keras/src/backend/tensorflow/trainer.py;
    keras-team/keras#20585, open): its
    eager build before the first step reduces a data batch across workers (PerReplica to
    Tensor error), and each step's metrics are reduced with a mean over axis 0, which a
    scalar does not have. So: build the optimizer now, leave the model's build to the first
    traced step (which runs in the strategy's scope), and report metrics as 1-vectors
    in each step (callbacks see floats). Call inside the strategy's scope, after compile."""
    model.optimizer.build(model.trainable_variables)
    model._distribute_strategy = None  # fit then takes the strategy of the scope it runs in
    for step in ("train_step", "test_step"):
        setattr(model, step, _metrics_as_vectors(getattr(model, step)))


def _metrics_as_vectors(step):
    import tensorflow as tf

    return lambda data: keras.tree.map_structure(lambda value: tf.reshape(value, [1]), step(data))


def strategy_devices(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices a strategy computes on (TensorFlow's default strategy: its default device)."""
    import tensorflow as tf

    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy does not list them
        return [tf.config.list_logical_devices("GPU" if tf.config.list_logical_devices("GPU") else "CPU")[0].name]


@dataclass
class Runtime:
    """What a run executes with, once resolved (recorded in run.json)."""
    strategy: tf.distribute.Strategy
    config: RuntimeConfig

    @property
    def strategy_name(self) -> str:
        return type(self.strategy).__name__ if keras.backend.backend() == "tensorflow" else "one device"

    @property
    def multi_worker(self) -> bool:
        if keras.backend.backend() != "tensorflow":
            return False
        import tensorflow as tf

        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    @property
    def workers(self) -> int:
        if not self.multi_worker:
            return 1
        cluster = self.strategy.cluster_resolver.cluster_spec().as_dict()
        return len(cluster.get("chief", [])) + len(cluster.get("worker", []))

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def per_replica_batch(self, global_batch: int) -> int:
        if global_batch % self.replicas:
            raise RecipeError(None, f"training.batch_size = {global_batch} is the global batch; it must be a "
                                    f"multiple of the {self.replicas} replicas")
        return global_batch // self.replicas

    def learning_rate(self, learning_rate: float) -> float:
        return learning_rate * self.replicas if self.config.learning_rate_scaling == "linear" else learning_rate

    @property
    def jit_compile(self):
        return {"auto": "auto", "on": True, "off": False}[self.config.jit_compile]

    def record(self, global_batch: int) -> dict:
        tensorflow = keras.backend.backend() == "tensorflow"
        return {"backend": keras.backend.backend(), "strategy": self.strategy_name, "replicas": self.replicas,
                "workers": self.workers,
                "devices": strategy_devices(self.strategy) if tensorflow else backend_devices()[:1],
                "global_batch": global_batch, "per_replica_batch": self.per_replica_batch(global_batch),
                "mixed_precision": self.config.mixed_precision, "jit_compile": self.config.jit_compile,
                "sync_batch_norm": self.config.sync_batch_norm,
                "learning_rate_scaling": self.config.learning_rate_scaling}


@contextlib.contextmanager
def runtime_context(config: RuntimeConfig, strategy: tf.distribute.Strategy | None = None):
    """Build, compile and fit inside: the strategy's scope (``strategy``: made before the data
    are loaded, as a CPU split must be) and the precision policy (the previous global policy
    is restored afterwards)."""
    strategy = strategy or make_strategy(config)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.mixed_precision)
    try:
        with strategy.scope():
            yield Runtime(strategy, config)
    finally:
        keras.config.set_dtype_policy(previous)
