"""tf-ecg quickstart: DeepFake ECGs by default, real MIT-BIH beats with --data-root."""

import json

import pytest

from tf_ecg.cli import main
from tf_ecg.predict import predict_file


def test_quickstart_learns_heart_rate_and_serves_any_rate(tmp_path, capsys, ptbxl_dir):
    """The real quickstart (seeded): the kept model beats the mean predictor by a clear
    margin, not only with finite metrics; then its SavedModel reads recordings at other
    rates, resampled to 50 Hz as in training."""
    assert main(["quickstart", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert "HR: MAE" in out and "SavedModel" in out
    hr = json.loads((tmp_path / "run" / "test_metrics.json").read_text())["per_target"]["HR"]
    assert hr["mae"] < 0.6 * hr["mae_of_mean_predictor"] and hr["r2"] > 0.5
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "finished" and record["data"]["info"]["generated"] == 1000

    result = predict_file(tmp_path / "model", ptbxl_dir / "records100" / "00000" / "00001_lr")  # 100 Hz
    assert len(result["outputs"]) == 1 and 40 < result["summary"]["HR"] < 150
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "model"), str(ptbxl_dir / "records500" / "00000" / "00001_hr")]) == 0
    at_500_hz = json.loads(capsys.readouterr().out)["summary"]["HR"]  # the same ECG, 500 Hz
    assert abs(at_500_hz - result["summary"]["HR"]) < 3
    assert main(["synth", "--n", "2", "--seed", "5", "--out", str(tmp_path / "synth")]) == 0  # 500 Hz
    result = predict_file(tmp_path / "model", tmp_path / "synth" / "deepfake_000001")
    assert len(result["outputs"]) == 1 and 40 < result["summary"]["HR"] < 150


def test_quickstart_overrides_are_recorded(tmp_path):
    assert main(["quickstart", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model"),
                 "--set", "data.n_ecgs=40", "--epochs", "1"]) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["overrides"] == {"data.n_ecgs": 40, "training.epochs": 1}
    assert record["data"]["info"]["generated"] == 40


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


def test_quickstart_refuses_an_export_folder_it_did_not_write_before_training(tmp_path, capsys):
    out = tmp_path / "model"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    assert main(["quickstart", "--run-dir", str(tmp_path / "run"), "--out", str(out)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and (out / "thesis.tex").read_text() == "do not delete"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_full_quickstart_learns_with_other_seeds(tmp_path, seed):
    """The issue's targets: test R2 >= 0.6 and MAE <= 0.6 x the mean predictor's, per seed
    (benchmarks/quickstart.py records the same runs with their wall time)."""
    assert main(["quickstart", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model"),
                 "--set", f"data.seed={seed}", "--set", f"training.seed={seed}"]) == 0
    hr = json.loads((tmp_path / "run" / "test_metrics.json").read_text())["per_target"]["HR"]
    assert hr["r2"] >= 0.6 and hr["mae"] <= 0.6 * hr["mae_of_mean_predictor"]
