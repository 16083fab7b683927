"""The committed benchmark results can be re-scored without retraining: the prediction files they
name exist, hold one row per scored example, and (where the labels are cheap to rebuild) give the
committed metrics again against labels whose sha256 the results file records."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tf_ecg.config import load_recipe
from tf_ecg.data.sources import load_source
from tf_ecg.evaluation.metrics import multiclass_report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PREDICTION_FILE = re.compile(r"^results/(\S+\.npy)")


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prediction_references(node, found: list) -> list:
    """(prediction file, the n scored beside it) for every results/*.npy a results file names."""
    if isinstance(node, dict):
        for value in node.values():
            if isinstance(value, str) and PREDICTION_FILE.match(value):
                found.append((PREDICTION_FILE.match(value).group(1), node.get("n")))
            else:
                _prediction_references(value, found)
    elif isinstance(node, list):
        for value in node:
            _prediction_references(value, found)
    return found


def test_every_named_prediction_file_is_committed_with_one_row_per_scored_example():
    references = [reference for path in sorted(RESULTS.glob("*.json"))
                  for reference in _prediction_references(json.loads(path.read_text()), [])]
    assert references, "no results file names its test predictions"
    for name, n in references:
        predictions = np.load(RESULTS / name)
        assert predictions.dtype == np.float16, name
        if n is not None:
            assert len(predictions) == n, name


def test_paired_bootstrap_separates_a_better_model_and_not_an_identical_one():
    table4 = _benchmark("deepfake_table4")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    names = ["a", "b", "c"]
    noise = [rng.dirichlet(np.ones(3), len(labels)) for _ in range(2)]
    informed = [0.5 * n + 0.5 * np.eye(3)[labels] for n in noise]
    same = table4.paired_difference(labels, noise, noise, names, draws=100)
    assert same["mean"] == 0 and same["bootstrap_95"] == [0, 0]
    better = table4.paired_difference(labels, informed, noise, names, draws=100)
    assert better["mean"] > 0.2 and better["bootstrap_95"][0] > 0


def test_table4_rescored_from_its_committed_probabilities(ptbxl_dir):
    result = json.loads((RESULTS / "deepfake_table4.json").read_text())["results"]
    protocol = result["protocol"]
    recipe = load_recipe(REPO / "models" / "inception1d_superclass.toml",
                         {"data.sampling_rate": protocol["sampling_rate"], "model.options.input_length": protocol["input_length"]})
    splits = load_source(recipe.data, ptbxl_dir.parent)
    labels = splits.test[1].astype(np.int64).reshape(-1)
    assert hashlib.sha256(labels.tobytes()).hexdigest() == result["test_labels"]["sha256"]
    rescored = 0
    for model, summary in result["models"].items():
        for run in summary["runs"]:
            probabilities = np.load(RESULTS / f"deepfake_table4_test_probabilities_{model}_seed{run['seed']}.npy")
            report = multiclass_report(labels, probabilities.astype(np.float64), splits.output_names)
            assert report["accuracy"] == pytest.approx(run["accuracy"], abs=1e-4)
            assert report["macro_auc"] == pytest.approx(run["macro_auc"], abs=1e-4)
            rescored += 1
    assert rescored >= 5
