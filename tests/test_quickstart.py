"""tf-ecg quickstart: DeepFake ECGs by default, real MIT-BIH beats with --data-root."""

import json
import time

import numpy as np
import pytest

from tf_ecg.cli import main
from tf_ecg.export import predict_file


def test_quickstart_deepfake_small(tmp_path, capsys, ptbxl_dir):
    code = main(["quickstart", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model"),
                 "--set", "data.n_ecgs=60", "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "HR: MAE" in out and "SavedModel" in out
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert report["task"] == "regression" and report["n"] >= 8
    assert np.isfinite(report["per_target"]["HR"]["mae"])
    # The exported model reads a real 100 Hz PTB-XL record: leads picked by name, 10 s windows.
    result = predict_file(tmp_path / "model", ptbxl_dir / "records100" / "00000" / "00001_lr")
    assert len(result["outputs"]) == 1 and np.isfinite(result["summary"]["HR"])


def test_quickstart_on_real_mitbih(tmp_path, capsys, mitdb_dir):
    code = main(["quickstart", "--data-root", str(mitdb_dir.parent), "--run-dir", str(tmp_path / "run"),
                 "--out", str(tmp_path / "model"), "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "accuracy" in out
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert report["class_names"] == ["N", "S", "V", "F", "Q"]
    assert report["n"] > 45_000  # all DS2 beats (de Chazal: 49,712 minus edge beats)
    assert report["accuracy"] > 0.7


def test_quickstart_needs_mitbih_under_data_root(tmp_path, capsys):
    assert main(["quickstart", "--data-root", str(tmp_path)]) == 2
    assert "MIT-BIH folder not found" in capsys.readouterr().err


@pytest.mark.slow
def test_full_quickstart_under_five_minutes(tmp_path, capsys):
    started = time.time()
    assert main(["quickstart", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model")]) == 0
    assert time.time() - started < 300
    report = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    hr = report["per_target"]["HR"]
    assert hr["mae"] < 0.75 * hr["mae_of_mean_predictor"]  # it learned something real
