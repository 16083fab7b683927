"""What a run executes on: versions, CPU model (family, model, flags) and accelerators.

Recorded in every run's ``run.json`` and every benchmark result, so that a figure can be
traced to the machine that produced it (one "AMD EPYC" name covers CPUs 2.5x apart).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path


def cpu_info() -> dict:
    """Model name, vendor, family, model, stepping and flags of the first CPU (Linux
    ``/proc/cpuinfo``, the fields ``lscpu`` shows), plus the number of usable cores."""
    fields = {"model name": "model_name", "vendor_id": "vendor", "cpu family": "family", "model": "model",
              "stepping": "stepping", "flags": "flags"}
    info = {"model_name": platform.processor() or platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in fields and fields[key] not in info.get("_seen", ()):
                info[fields[key]] = value.strip()
                info.setdefault("_seen", set()).add(fields[key])
            if not line.strip() and "_seen" in info:
                break  # the first processor's block is enough
    except OSError:
        pass
    info.pop("_seen", None)
    if "flags" in info:
        info["flags"] = sorted(info["flags"].split())
    info["usable_cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return info


def versions() -> dict:
    """tf_ecg, Keras and its backend (and TensorFlow, where installed: the data pipelines and
    SavedModels are its), NumPy and Python."""
    import keras
    import numpy as np

    import tf_ecg

    backend = keras.backend.backend()
    found = {"tf_ecg": tf_ecg.__version__, "keras": keras.__version__, "keras_backend": backend}
    for module in dict.fromkeys(["tensorflow", backend]):
        try:
            found[module] = importlib.import_module(module).__version__
        except ModuleNotFoundError:
            pass
    return {**found, "numpy": np.__version__, "python": platform.python_version()}


# the Keras backends tf_ecg runs on, and how to install each
KERAS_BACKENDS = {"tensorflow": 'pip install "tf_ecg[cpu]" (or "tf_ecg[gpu]")',
                  "jax": 'pip install "tf_ecg[jax]" (CPU; "jax[cuda12]" for NVIDIA GPUs)',
                  "torch": 'pip install "tf_ecg[torch]" (or PyTorch\'s own CUDA wheel)'}


def keras_backend_name() -> str:
    """The backend Keras will start (``KERAS_BACKEND``, else ``~/.keras/keras.json``, else
    TensorFlow), read without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def check_keras_backend() -> str:
    """The Keras backend, if tf_ecg runs on it and it is installed; else one line saying which
    backend and what to do (a ``BackendError``)."""
    from tf_ecg.errors import BackendError

    name = keras_backend_name()
    if name not in KERAS_BACKENDS:
        raise BackendError(None, f"KERAS_BACKEND={name}: tf_ecg runs on {', '.join(KERAS_BACKENDS)}; "
                                 f"set KERAS_BACKEND to one of them (unset: tensorflow)")
    if importlib.util.find_spec(name) is None:
        raise BackendError(None, f"KERAS_BACKEND={name}: {name} is not installed: {KERAS_BACKENDS[name]}, "
                                 f"or unset KERAS_BACKEND to run on TensorFlow")
    return name


def backend_devices() -> list[str]:
    """The devices the Keras backend computes on, accelerators first ("gpu:0", "cpu:0")."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu:0"]
    return keras.distribution.list_devices()


def accelerators() -> list[dict]:
    """TensorFlow's GPUs (none where TensorFlow is not installed)."""
    tf = optional_tensorflow()
    if tf is None:
        return []
    devices = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        devices.append({"name": device.name, "model": details.get("device_name", ""),
                        "compute_capability": list(details.get("compute_capability", ()) or ())})
    return devices


# environment variables that choose threads or CPU kernels (TensorFlow, oneDNN, PyTorch, MKL)
KERNEL_ENVIRONMENT = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS",
                      "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def cpu_kernels() -> str:
    """Which CPU kernels TensorFlow runs here: "oneDNN" or "Eigen" (TensorFlow turns oneDNN
    on by default only on CPUs with AVX-512 VNNI / BF16, AVX-VNNI or AMX)."""
    from tf_ecg.models.layers import onednn_enabled

    return "oneDNN" if onednn_enabled() else "Eigen"


def optional_tensorflow():
    """TensorFlow where it is installed, else None: JAX and PyTorch train without it (no
    tf.data, TensorBoard event files or SavedModel then)."""
    try:
        import tensorflow as tf
    except ModuleNotFoundError:
        return None
    return tf


def machine_info() -> dict:
    tf = optional_tensorflow()
    info = {"platform": platform.platform(), "cpu": cpu_info(), **versions(), "executable": sys.executable}
    if tf is None:
        return {**info, "devices": backend_devices()}
    return {**info, "gpus": accelerators(), "cpu_kernels": cpu_kernels(),
            "thread_settings": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                                **{k: os.environ[k] for k in KERNEL_ENVIRONMENT if k in os.environ}}}
