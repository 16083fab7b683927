"""benchmarks/gpu.py on the CPU: what the GPU job runs, measured here, and without TensorFlow
(the GPU image has none)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import environment_without

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
# a process as on the GPU image: no TensorFlow, nor the ECG libraries (neurokit2, wfdb,
# deepfake-ecg) that only the data code needs; PyTorch hidden too, so that JAX alone is measured
GPU_IMAGE_LACKS = ("tensorflow", "torch", "neurokit2", "wfdb", "deepfakeecg")


def _gpu_benchmark(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = environment_without(tmp_path / "hidden", GPU_IMAGE_LACKS)
    return subprocess.run([sys.executable, str(SCRIPT), "--backends", "jax", "--only", "kaggle_conv1d_baseline",
                           "--steps", "1", "--result", str(tmp_path / "result"), *arguments],
                          env=environment, capture_output=True, text=True)


@pytest.fixture(autouse=True)
def _jax():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")


def test_the_gpu_benchmark_measures_the_cpu_without_tensorflow(tmp_path):
    done = _gpu_benchmark(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert "tensorflow" not in result["machine"]["versions"] and "jax" in result["machine"]["versions"]
    assert result["machine"]["cpu"]["flags"]  # the CPU it ran on
    entry = result["results"]["kaggle_conv1d_baseline"]["jax"]
    assert entry["device"].startswith("cpu")
    float32 = entry["float32"]
    assert float32["batch"] == 32 and float32["train_examples_per_s"] > 0 and float32["inference_examples_per_s"] > 0
    assert float32["train_compile_s"] >= 0
    numerics = entry["mixed_bfloat16"]["numerics"]  # bf16 checked against float32 on the same weights
    assert 0 < numerics["max_output_difference_relative"] < 1 and numerics["first_loss_relative_difference"] > 0
    assert numerics["holds"] == (max(numerics["max_output_difference_relative"],
                                     numerics["first_loss_relative_difference"]) <= numerics["tolerance"])


def test_asking_for_a_gpu_where_none_is_visible_is_one_line_and_writes_nothing(tmp_path):
    done = _gpu_benchmark(tmp_path, "--device", "gpu", "--precisions", "float32")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("gpu.py: error: --device gpu: no GPU visible to jax; run it on a "
                                                    "GPU machine, or --device any to measure the CPU")
    assert not (tmp_path / "result.json").exists()


def test_on_a_cpu_it_reports_jax_over_tensorflow_against_the_target(tmp_path):
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(SCRIPT), "--backends", "jax", "tensorflow", "--only",
                           "kaggle_conv1d_baseline", "--precisions", "float32", "--steps", "1",
                           "--result", str(tmp_path / "result")], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    measured = {b: result["results"]["kaggle_conv1d_baseline"][b]["float32"]["train_examples_per_s"]
                for b in ("jax", "tensorflow")}
    ratio = result["train_step_over_tensorflow"]["kaggle_conv1d_baseline"]["jax_over_tensorflow"]
    assert ratio == pytest.approx(measured["jax"] / measured["tensorflow"], abs=1e-3)
    target = result["targets"]
    assert target["jax_train_step_over_tensorflow_at_least"] == pytest.approx(1 / 1.5, abs=1e-3)
    assert target["per_port"]["kaggle_conv1d_baseline"] == {"jax_over_tensorflow": ratio, "met": ratio >= 1 / 1.5}
