"""Honest errors: bad input is one line naming the file (exit 2) and nothing is lost;
a bug in tf_ecg keeps its traceback (exit 1)."""

import json
import shutil
import socket

import numpy as np
import pytest

import tf_ecg
from tf_ecg.cli import main
from tf_ecg.data.spec import InputSpec
from tf_ecg.saved_model import export_model
from tf_ecg.serving import serving_contract, serving_model


@pytest.fixture(scope="module")
def beat_model(tmp_path_factory):
    """An (untrained) exported beat classifier: 160 x 2 windows at 360 Hz, 5 classes."""
    out = tmp_path_factory.mktemp("export") / "beats"
    spec = InputSpec("beat", 360, 160, None, 2, before=80, after=80)
    model = serving_model(tf_ecg.build_model("loo_conv1d", num_classes=5), spec, "multiclass", "logits")
    return export_model(model, out, {"input_spec": spec.to_dict(), "output_names": list("NSVFQ"),
                                     "task": "multiclass", "outputs": "logits", "serving": serving_contract(spec)})


def test_a_bug_is_not_disguised_as_bad_input(monkeypatch):
    import tf_ecg.cli

    def broken(args):
        return {}["no such key"]  # a typo in a dict lookup, say

    monkeypatch.setattr(tf_ecg.cli, "cmd_models", broken)
    with pytest.raises(KeyError):
        main(["models"])

    def shape_bug(args):
        raise ValueError("Input 0 of layer 'dense' is incompatible with the layer")

    monkeypatch.setattr(tf_ecg.cli, "cmd_models", shape_bug)
    with pytest.raises(ValueError, match="incompatible"):
        main(["models"])


def test_debug_shows_the_traceback_of_input_errors(tmp_path, capsys):
    from tf_ecg.errors import RecipeError

    assert main(["train", str(tmp_path / "missing.toml")]) == 2
    assert "recipe not found" in capsys.readouterr().err
    with pytest.raises(RecipeError):
        main(["train", str(tmp_path / "missing.toml"), "--debug"])


@pytest.mark.parametrize("write, message", [
    (lambda p: np.save(p, np.full((3, 160, 2), np.nan, "float32")), "960 NaN or infinite values (first in window 0)"),
    (lambda p: np.save(p, np.where(np.arange(3 * 160 * 2).reshape(3, 160, 2) == 400, np.nan, 1.0)),
     "1 NaN or infinite values (first in window 1)"),
    (lambda p: np.save(p, np.zeros((0, 2), "float32")), "empty array"),
    (lambda p: np.save(p, np.zeros((4, 2, 160), "float32")), "transposed?"),
    (lambda p: np.save(p, np.zeros((2, 5000), "float32")), "more leads than samples: transposed?"),
    (lambda p: np.save(p, np.array(["a", "b"])), "expected real numbers"),
    (lambda p: p.write_bytes(b"\x93NUMPY garbage"), "not a readable .npy array"),
])
def test_bad_arrays_for_predict(beat_model, tmp_path, capsys, write, message):
    path = tmp_path / "input.npy"
    write(path)
    out = tmp_path / "out.json"
    assert main(["predict", str(beat_model), str(path), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and str(path) in error
    assert not out.exists()


def test_bad_saved_models_and_csvs(beat_model, tmp_path, capsys):
    windows = tmp_path / "windows.npy"
    np.save(windows, np.zeros((2, 160, 2), "float32"))
    assert main(["predict", str(tmp_path / "nowhere"), str(windows)]) == 2
    assert "SavedModel folder not found" in capsys.readouterr().err

    broken = tmp_path / "broken"
    shutil.copytree(beat_model, broken)
    for content, message in (("", "corrupt tf_ecg metadata"), ("{\"task\": ", "corrupt tf_ecg metadata"),
                             ("{}", "missing ['input_spec', 'output_names', 'task', 'serving']"),
                             ('{"input_spec": {"kind": 1}, "output_names": [], "task": "x"}', "corrupt")):
        (broken / "assets.extra" / "tf_ecg.json").write_text(content)
        assert main(["predict", str(broken), str(windows)]) == 2
        assert message in capsys.readouterr().err

    text_only = tmp_path / "text.csv"
    text_only.write_text("name,value\nsomething,else\n")
    assert main(["predict", str(beat_model), str(text_only)]) == 2
    assert "no numeric ECG samples: 2 line(s) of text only" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["predict", str(beat_model), str(empty)]) == 2
    assert "no ECG samples: the file is empty" in capsys.readouterr().err


def test_output_files_are_never_replaced(beat_model, tmp_path, capsys):
    windows = tmp_path / "windows.npy"
    np.save(windows, np.random.default_rng(0).normal(scale=0.5, size=(2, 160, 2)).astype("float32"))
    existing = tmp_path / "mine.json"
    existing.write_text("precious")
    assert main(["predict", str(beat_model), str(windows), "--out", str(existing)]) == 2
    assert "exists" in capsys.readouterr().err and existing.read_text() == "precious"
    assert main(["predict", str(beat_model), str(windows), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    out = tmp_path / "new" / "p.json"
    assert main(["predict", str(beat_model), str(windows), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["outputs"]) == 2


def test_prediction_files_with_impossible_scores(shared_data, tmp_path, capsys):
    labels = shared_data / "code-test" / "annotations" / "gold_standard.csv"
    scores = np.load(shared_data / "code-test" / "dnn_predicts" / "other_seeds" / "model_1.npy")
    for name, bad, message in (("nan", np.where(np.arange(scores.size).reshape(scores.shape) == 7, np.nan, scores),
                                "1 NaN or infinite scores"),
                               ("logits", scores * 4 - 2, "expected sigmoid probabilities in [0, 1]")):
        path = tmp_path / f"{name}.npy"
        np.save(path, bad)
        assert main(["evaluate", "--labels", str(labels), "--predictions", str(path),
                     "--out", str(tmp_path / "report.json")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "report.json").exists()
    good = tmp_path / "good.npy"
    np.save(good, scores)
    assert main(["evaluate", "--labels", str(labels), "--predictions", str(good), "--out",
                 str(tmp_path / "report.json")]) == 0
    json.loads((tmp_path / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))


def test_synth_refuses_to_overwrite(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["synth", "--n", "1", "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err
    out = tmp_path / "synth"
    out.mkdir()
    (out / "deepfake_000000.hea").write_text("someone else's record")
    assert main(["synth", "--n", "2", "--out", str(out)]) == 2
    assert "1 file(s) to write exist already (first: deepfake_000000.hea)" in capsys.readouterr().err
    assert (out / "deepfake_000000.hea").read_text() == "someone else's record"
    assert main(["synth", "--n", "0", "--out", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


def test_download_from_a_dead_mirror_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["data", "download", "mitdb", "--data-root", str(root),
                 "--base-url", f"http://127.0.0.1:{_closed_port()}/"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot list the records of mitdb" in error and "ConnectionError" in error
    assert not root.exists()


def test_evaluate_and_export_of_a_missing_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "no_run")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty")]) == 2
    assert "not a tf_ecg run directory" in capsys.readouterr().err
