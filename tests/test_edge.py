"""LiteRT and ONNX exports of a trained run: the preprocessing inside, outputs equal to the
SavedModel's (float32), int8 close on real MIT-BIH beats, bad requests refused before the work."""

import json

import numpy as np
import pytest

import tf_ecg
from test_train_export_predict import RECIPE as TINY_MITBIH_RECIPE
from tf_ecg.cli import main
from tf_ecg.edge import run_onnx, run_tflite


@pytest.fixture(scope="module")
def run(mitdb_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("edge")
    recipe = folder / "tiny.toml"
    recipe.write_text(TINY_MITBIH_RECIPE.format(epochs=2))
    tf_ecg.train(recipe, folder / "run", data_root=mitdb_dir.parent, verbose=0)
    saved = tf_ecg.export(folder / "run", folder / "saved")
    return folder, saved


@pytest.fixture(scope="module")
def test_windows(run, mitdb_dir):
    """Real beats of record 100 as the serving signature takes them (mV), and their labels."""
    from tf_ecg.data.sources import load_source
    from tf_ecg.serving import serving_windows
    from tf_ecg.training.trainer import load_run_recipe

    splits = load_source(load_run_recipe(run[0] / "run").data, mitdb_dir.parent)
    x, y = splits.test
    return serving_windows(x[:600], splits.input_spec), y[:600]


def test_float32_exports_equal_the_saved_model(run, test_windows, mitdb_dir):
    folder, saved = run
    windows, _ = test_windows
    expected = tf_ecg.load(saved).exported(windows)
    for file_format, runner in (("tflite", run_tflite), ("onnx", run_onnx)):
        out = folder / f"model.{file_format}"
        assert main(["export", str(folder / "run"), "--format", file_format, "--out", str(out),
                     "--data-root", str(mitdb_dir.parent)]) == 0
        np.testing.assert_allclose(runner(out, windows), expected, atol=1e-4)
        metadata = json.loads(out.with_name(out.name + ".json").read_text())
        assert metadata["edge"]["format"] == file_format and metadata["output_names"] == list("NSVFQ")


def test_quantized_litert_keeps_the_decisions(run, test_windows, mitdb_dir):
    folder, saved = run
    windows, labels = test_windows
    expected = tf_ecg.load(saved).exported(windows)
    for quantize in ("dynamic", "int8"):
        out = folder / f"model-{quantize}.tflite"
        assert main(["export", str(folder / "run"), "--format", "tflite", "--quantize", quantize,
                     "--out", str(out), "--data-root", str(mitdb_dir.parent)]) == 0
        outputs = run_tflite(out, windows)
        agreement = np.mean(outputs.argmax(axis=1) == expected.argmax(axis=1))
        accuracy = np.mean(outputs.argmax(axis=1) == labels) - np.mean(expected.argmax(axis=1) == labels)
        assert agreement >= 0.95 and abs(accuracy) <= 0.02, (quantize, agreement, accuracy)
        assert json.loads(out.with_name(out.name + ".json").read_text())["edge"]["representative_windows"] == \
            (256 if quantize == "int8" else None)


def test_bad_edge_requests_are_refused_before_the_work(run, tmp_path, capsys):
    folder, _ = run
    existing = tmp_path / "there.tflite"
    existing.write_bytes(b"mine")
    cases = [
        (["export", str(folder / "run"), "--format", "tflite", "--out", str(existing)], "tflite model file exists"),
        (["export", str(folder / "run"), "--format", "onnx", "--quantize", "int8", "--out", str(tmp_path / "m.onnx")],
         "--quantize int8 is for LiteRT"),
        (["export", str(folder / "run"), "--format", "tflite", "--out", str(tmp_path / "m.onnx")],
         "a tflite export is written to a .tflite file"),
        (["export", "--preset", "pulse2pulse_generator", "--format", "tflite", "--quantize", "int8",
          "--out", str(tmp_path / "g.tflite")], "needs --calibration-data"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert existing.read_bytes() == b"mine" and sorted(p.name for p in tmp_path.iterdir()) == ["there.tflite"]
