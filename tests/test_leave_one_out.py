import json

import numpy as np

from tf_ecg import cli
from tf_ecg.data import mitbih
from tf_ecg.training import leave_one_out
from tf_ecg.training.leave_one_out import LeaveOneOutConfig, run_fold, run_leave_one_out

POOL = ["100", "119", "208"]  # normal beats, bigeminy (V), V + F + S


def test_all_records_reproduce_the_originals_beat_set(mitdb_dir):
    """The seed notebook printed the share of normal beats as 0.6856484950382865: every beat
    symbol but Q, windows [R - 80, R + 80) that fit the record, 14 classes."""
    beats, labels, symbols = mitbih.leave_one_out_beats(mitdb_dir)
    assert len(labels) == 109_438 and beats.waves.shape[1:] == (160, 2)
    assert (beats.symbols == "N").mean() == 0.6856484950382865
    assert symbols == ["N", "A", "V", "/", "f", "F", "j", "L", "a", "J", "R", "E", "S", "e"]


def test_fold_splits_the_held_out_record_by_time(mitdb_dir):
    beats, labels, symbols = mitbih.leave_one_out_beats(mitdb_dir, POOL)
    result = run_fold(beats, labels, len(symbols), "119", LeaveOneOutConfig(epochs=1, fine_tune_epochs=3))
    held_out = beats.records == "119"
    assert len(result["baseline_true"]) == held_out.sum()
    last20 = beats.samples[held_out] >= leave_one_out.EVALUATION_START
    assert len(result["transfer_true"]) == len(result["baseline_last20_true"]) == last20.sum()
    np.testing.assert_array_equal(result["transfer_true"], labels[held_out][last20])
    # record 119 is ventricular bigeminy; after fine-tuning on its first 10 minutes the model
    # finds its V beats in the last 20
    v = symbols.index("V")
    true, predicted = result["transfer_true"], result["transfer_pred"]
    assert (predicted[true == v] == v).mean() > 0.9 and (predicted == true).mean() > 0.9


def test_protocol_resumes_and_pools_folds(mitdb_dir, tmp_path, monkeypatch):
    out = tmp_path / "loo"
    config = LeaveOneOutConfig(epochs=1, fine_tune_epochs=1)
    report = run_leave_one_out(mitdb_dir, out, ["100", "119"], config, pool=POOL, tensorboard=True)
    assert (out / "fold_100.npz").exists() and (out / "tensorboard" / "119" / "transfer").is_dir()
    assert (out / "plots" / "transfer_aami_confusion.png").stat().st_size > 1000
    assert any((out / "tensorboard" / "pooled").iterdir())
    pooled = report["variants"]["baseline"]["pooled"]
    beats, _, _ = mitbih.leave_one_out_beats(mitdb_dir, ["100", "119"])
    assert pooled["n"] == len(beats.symbols)
    aami = report["variants"]["transfer"]["pooled_aami"]
    assert set(aami["se_ppv"]) == set(mitbih.AAMI_CLASSES) and 0 <= aami["se_ppv"]["V"]["Se"] <= 1
    # a second run trains only the missing fold
    (out / "fold_100.npz").unlink()
    calls = []
    original = leave_one_out.run_fold
    monkeypatch.setattr(leave_one_out, "run_fold", lambda *a, **k: calls.append(a[3]) or original(*a, **k))
    run_leave_one_out(mitdb_dir, out, ["100", "119"], config, pool=POOL, tensorboard=False)
    assert calls == ["100"]
    assert json.loads((out / "report.json").read_text())["folds"] == 2


def test_cli_runs_a_fold_and_refuses_mixed_configurations(mitdb_dir, tmp_path, capsys):
    out = tmp_path / "loo"
    args = ["leave-one-out", "--data-root", str(mitdb_dir.parent), "--out", str(out), "--pool", *POOL,
            "--records", "208", "--epochs", "1", "--fine-tune-epochs", "1"]
    assert cli.main(args) == 0
    assert "transfer: accuracy" in capsys.readouterr().out
    assert cli.main(args[:-1] + ["2"]) == 2
    assert "different configuration" in capsys.readouterr().err
