"""The Python face: every public name documented and used by the CLI or a notebook, and the
whole path (train -> evaluate -> export -> load -> predict) from Python on real MIT-BIH beats."""

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

import tf_ecg
from test_train_export_predict import RECIPE as TINY_MITBIH_RECIPE

REPO = Path(__file__).resolve().parents[1]


def _uses():
    cli = (REPO / "tf_ecg" / "cli.py").read_text()
    cli_imports = set(re.findall(r"from tf_ecg\.\w+ import ([\w, ]+)", cli))
    imported = {name.strip() for group in cli_imports for name in group.split(",")}
    notebooks = "".join("".join(cell["source"]) for path in sorted((REPO / "notebooks").glob("*.ipynb"))
                        for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code")
    return imported, notebooks


@pytest.mark.parametrize("name", [n for n in tf_ecg.__all__ if n != "__version__"])
def test_every_public_name_is_documented_and_used(name):
    value = getattr(tf_ecg, name)
    doc = inspect.getdoc(value) or ""
    assert len(doc.split()) >= 8, f"tf_ecg.{name} has no real docstring"
    imported, notebooks = _uses()
    assert name in imported or f"tf_ecg.{name}(" in notebooks, f"tf_ecg.{name} is used by neither the CLI nor a notebook"


def test_notebooks_use_the_python_face_and_documented_helpers_only():
    """The verbs (train, evaluate, export, predict...) go through ``tf_ecg.<name>``; any other
    import from tf_ecg names a module or object rendered in the API reference."""
    _, notebooks = _uses()
    reference = set(re.findall(r"^::: (tf_ecg[\w.]*)", (REPO / "docs" / "api.md").read_text(), re.M))
    imports = re.findall(r"from (tf_ecg[\w.]*) import ([\w, ]+)", notebooks)
    assert imports, "the notebooks import no helper: the pattern is broken"
    for module, names in imports:
        for name in (n.strip() for n in names.split(",")):
            assert f"{module}.{name}" in reference or module in reference or \
                (module == "tf_ecg.data" and f"tf_ecg.data.{name}" in reference), \
                f"a notebook imports {module}.{name}, which the API reference does not document"
    for internal in ("tf_ecg.training.trainer", "tf_ecg.saved_model", "tf_ecg.predict", "tf_ecg.config",
                     "tf_ecg.data.sources import", "tf_ecg.deepfake", "tf_ecg.training.leave_one_out"):
        assert internal not in notebooks, f"a notebook reaches into {internal} instead of the Python face"


def test_import_tf_ecg_starts_no_tensorflow():
    import subprocess
    import sys

    program = "import sys, tf_ecg; tf_ecg.presets(); assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", program]).returncode == 0


def test_train_evaluate_export_load_predict_from_python(mitdb_dir, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_MITBIH_RECIPE.format(epochs=3))
    result = tf_ecg.train(recipe, tmp_path / "run", data_root=mitdb_dir.parent, epochs=1, verbose=0)
    assert not result.paused and result.test_report["n"] > 2000
    assert [l.strip() for l in (tmp_path / "run" / "history.csv").read_text().splitlines()[1:]].__len__() == 1

    splits = tf_ecg.load_data(recipe, data_root=mitdb_dir.parent)  # what train built
    assert splits.example_shape == (160, 2) and len(splits.test[1]) == result.test_report["n"]
    np.testing.assert_array_equal(splits.test[1], result.splits.test[1])

    report = tf_ecg.evaluate(tmp_path / "run", split="val", data_root=mitdb_dir.parent)
    assert report["data_matches_run"] and 0 <= report["accuracy"] <= 1

    saved = tf_ecg.export(tmp_path / "run", tmp_path / "saved")
    model = tf_ecg.load(saved)
    assert model.task == "multiclass" and model.output_names == list("NSVFQ") and model.input_spec.length == 160
    from_file = model.predict(mitdb_dir / "100")
    assert len(from_file["outputs"]) > 2000 and from_file["warnings"] == []
    recording = tf_ecg.read_recording(mitdb_dir / "100")
    assert recording.leads == ("MLII", "V5") and recording.sampling_rate == 360 and recording.units == "mV"
    from_array = model.predict(recording.signal, sampling_rate=360)
    np.testing.assert_allclose(from_array["outputs"], from_file["outputs"], atol=1e-6)  # leads by position


def test_presets_load_preset_and_synth(originals):
    assert "glucose_supervised" in tf_ecg.presets()
    loaded = tf_ecg.load_preset("glucose_supervised",
                                weights=originals / "weights" / "glucose" / "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth")
    assert loaded.input_spec.sampling_rate == 512 and loaded.model.count_params() == loaded.preset.parameters
    ecgs = tf_ecg.synth(2, seed=3, progress=False)
    assert ecgs.shape == (2, 5000, 8) and np.isfinite(ecgs).all()
    np.testing.assert_array_equal(ecgs, tf_ecg.synth(2, seed=3, progress=False))  # seeded
