"""Presets: every published model from its own weight file to predictions, and the input
contract (rates, lead names, units, CODE HDF5) enforced on the way."""

import importlib.util
import json

import h5py
import numpy as np
import pytest

from conftest import assert_explains, write_record
from test_keras_hdf5 import write_tf_keras2_model_file
from tf_ecg import build_model
from tf_ecg.cli import main
from tf_ecg.data.formats.code import to_code_format
from tf_ecg.data.formats.wfdb_records import read_record
from tf_ecg.errors import ECGDataError
from tf_ecg.predict import predict_code_hdf5, predict_file
from tf_ecg.published import PRESETS, get_preset

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed (optional)")
CODE_ORDER = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_the_issue_list_of_presets_exists_and_is_listed(capsys):
    wanted = {"ribeiro_code", "autoecg_transfer", "e18_inception1d_regressor", "e18_inception1d_superclass",
              "mitbih_resnext", "glucose_supervised", "glucose_comparator", "pulse2pulse_generator"}
    assert wanted <= set(PRESETS)
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in PRESETS)
    assert main(["presets", "ribeiro_code"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["thresholds"] == [0.124, 0.07, 0.05, 0.278, 0.390, 0.174] and shown["input_spec"]["units"] == "mV"
    assert main(["presets", "no_such_model"]) == 2
    assert "unknown preset 'no_such_model'" in capsys.readouterr().err


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "mitbih_resnext"])
def test_preset_parameter_counts(name):
    preset = get_preset(name)
    assert build_model(preset.model, **preset.options).count_params() == preset.parameters


def _random_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:  # non-trivial BatchNorm statistics too
        weight.assign((rng.normal(size=weight.shape) * 0.05 + (1 if "variance" in weight.path else 0))
                      .astype("float32"))
    return model


@pytest.fixture(scope="module")
def ribeiro(tmp_path_factory):
    """A Ribeiro ResNet with random weights and the Keras-2 HDF5 file a user would hold."""
    model = _random_weights(build_model("ribeiro_resnet"))
    path = tmp_path_factory.mktemp("ribeiro") / "model.hdf5"
    write_tf_keras2_model_file(path, model)
    saved = tmp_path_factory.mktemp("exports") / "ribeiro_code"
    assert main(["export", "--preset", "ribeiro_code", "--weights", str(path), "--out", str(saved)]) == 0
    return model, saved


def test_ribeiro_preset_explained_by_both_methods(ribeiro, ptbxl_dir, tmp_path):
    _, saved = ribeiro
    record = ptbxl_dir / "records500" / "00000" / "00001_hr"
    for method in ("integrated_gradients", "grad_cam"):
        assert assert_explains(saved, record, tmp_path / method, method, output="AF").shape == (1, 4000, 12)  # 10 s at 400 Hz: padded inside the graph


def test_ribeiro_preset_on_a_ptbxl_record_in_any_lead_spelling_order_and_unit(ribeiro, ptbxl_dir, tmp_path):
    model, saved = ribeiro
    record = read_record(ptbxl_dir / "records500" / "00000" / "00001_hr")
    exam = to_code_format(record.select_leads(CODE_ORDER).signal, 500)
    expected = model.predict(exam[None], verbose=0)
    served = predict_file(saved, record.path)
    np.testing.assert_allclose(served["outputs"], expected, rtol=1e-4, atol=1e-5)
    assert served["summary"]["positive_fraction"].keys() == set(get_preset("ribeiro_code").output_names)
    assert served["predicted"] == [[c for c, p, t in zip(get_preset("ribeiro_code").output_names, expected[0],
                                                         [0.124, 0.07, 0.05, 0.278, 0.390, 0.174]) if p > t]]
    # CODE spellings, another lead order, microvolts in the header: the same exam
    order = np.random.default_rng(0).permutation(12)
    write_record(tmp_path, "code_spelling", record.signal[:, order] * 1000, 500, [CODE_ORDER[i] for i in order],
                 units="uV")
    np.testing.assert_allclose(predict_file(saved, tmp_path / "code_spelling")["outputs"], expected,
                               rtol=1e-4, atol=1e-5)
    # a headerless array at 400 Hz in volts, said so on the command line
    np.save(tmp_path / "exam.npy", to_code_format(record.select_leads(CODE_ORDER).signal, 500)[:4000] / 1000)
    in_volts = predict_file(saved, tmp_path / "exam.npy", sampling_rate=400, units="V")
    assert np.abs(np.asarray(in_volts["outputs"]) - expected).max() < 0.05  # padded differently, same exam


def test_input_contract_errors_name_the_file(ribeiro, ptbxl_dir, tmp_path, capsys):
    _, saved = ribeiro
    record = read_record(ptbxl_dir / "records500" / "00000" / "00001_hr")
    write_record(tmp_path, "eleven", record.signal[:, :11], 500, list(record.leads[:11]))
    with pytest.raises(ECGDataError, match=r"eleven.*lead\(s\) \['V6'\] missing"):
        predict_file(saved, tmp_path / "eleven")
    write_record(tmp_path, "single", record.signal[:, :1], 500, ["ECG"])
    with pytest.raises(ECGDataError, match=r"single: single-lead file: the model needs 12 lead\(s\) \(I, II, III"):
        predict_file(saved, tmp_path / "single")
    np.save(tmp_path / "one_lead.npy", record.signal[:, 0])
    with pytest.raises(ECGDataError, match=r"one_lead\.npy: single-lead file: the model needs 12 lead\(s\)"):
        predict_file(saved, tmp_path / "one_lead.npy")
    nan = record.signal.copy()
    nan[100, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ECGDataError, match=r"nan\.npy: 1 NaN or infinite values \(first in sample 100\)"):
        predict_file(saved, tmp_path / "nan.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    assert main(["predict", str(saved), str(tmp_path / "empty.npy")]) == 2
    assert "empty.npy: not a readable .npy array" in capsys.readouterr().err
    assert main(["predict", str(saved), str(record.path), "--sampling-rate", "400"]) == 2
    assert "00001_hr.hea: the file says sampling rate (Hz) 500.0, the command line 400.0" in capsys.readouterr().err
    assert main(["predict", str(saved), str(tmp_path / "exam.npy"), "--units", "furlongs"]) == 2
    assert "unknown amplitude unit 'furlongs'" in capsys.readouterr().err


def _tracings_file(path, exams, exam_ids=True, dataset="tracings"):
    with h5py.File(path, "w") as handle:
        handle.create_dataset(dataset, data=exams, chunks=(1, *exams.shape[1:]))
        if exam_ids:
            handle.create_dataset("exam_id", data=np.arange(1000, 1000 + len(exams)))
    return path


def test_code_hdf5_scores_equal_model_predict_in_file_order(ribeiro, tmp_path, capsys):
    model, saved = ribeiro
    exams = np.random.default_rng(1).normal(scale=0.3, size=(7, 4096, 12)).astype("float32")
    source = _tracings_file(tmp_path / "ecg_tracings.hdf5", exams)
    assert main(["predict", str(saved), str(source), "--out", str(tmp_path / "scores.npy"), "--batch-size", "3"]) == 0
    expected = model.predict(exams, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), expected, rtol=1e-4, atol=1e-5)
    assert main(["predict", str(saved), str(source), "--out", str(tmp_path / "scores.csv")]) == 0
    table = np.genfromtxt(tmp_path / "scores.csv", delimiter=",", names=True)
    assert table.dtype.names[0] == "exam_id" and list(table["exam_id"]) == list(range(1000, 1007))
    np.testing.assert_allclose(table["AF"], expected[:, 4], rtol=1e-4, atol=1e-5)
    capsys.readouterr()

    # Ribeiro's loop: scores -> tf-ecg evaluate against labels of the same exams
    labels = tmp_path / "gold.csv"
    labels.write_text("1dAVb,RBBB,LBBB,SB,AF,ST\n" + "\n".join(",".join(str(int(v)) for v in row)
                                                           for row in expected > 0.5 - 1e-9) + "\n")
    assert main(["evaluate", "--labels", str(labels), "--predictions", str(tmp_path / "scores.npy"),
                 "--thresholds", "0.5"]) == 0
    assert "(n = 7)" in capsys.readouterr().out


def _ptbxl_exams(ptbxl_dir, count):
    """The first ``count`` PTB-XL 500 Hz records as CODE exams (400 Hz, 4096 samples, mV)."""
    records = sorted((ptbxl_dir / "records500" / "00000").glob("*_hr.hea"))[:count]
    return np.stack([to_code_format(read_record(r.with_suffix("")).select_leads(CODE_ORDER).signal, 500)
                     for r in records]).astype("float32")


def test_flat_exams_are_skipped_and_reported_the_others_scored(ribeiro, ptbxl_dir, tmp_path, capsys):
    model, saved = ribeiro
    exams = _ptbxl_exams(ptbxl_dir, 4)
    exams[1] = 0.0          # an empty exam (CODE-15% has them)
    exams[3, :, 7] = 0.25   # V2 constant: a disconnected electrode
    source = _tracings_file(tmp_path / "exams.hdf5", exams)
    out = tmp_path / "scores.npy"
    assert main(["predict", str(saved), str(source), "--out", str(out)]) == 0
    scores = np.load(out)
    assert np.isnan(scores[[1, 3]]).all()
    np.testing.assert_allclose(scores[[0, 2]], model.predict(exams[[0, 2]], verbose=0), rtol=1e-4, atol=1e-5)
    report = json.loads((tmp_path / "scores.npy.report.json").read_text())
    assert report["scored"] == 2 and report["warnings"] == [] and report["skipped"] == [
        {"exam": 1, "problem": "flat lead(s) I, II, III, aVR, aVL, aVF, V1, V2, V3, V4, V5, V6", "exam_id": 1001},
        {"exam": 3, "problem": "flat lead(s) V2", "exam_id": 1003}]
    assert json.loads(capsys.readouterr().out)["skipped"] == report["skipped"]


def test_exams_in_adc_counts_are_warned_about(ribeiro, ptbxl_dir, tmp_path, capsys):
    _, saved = ribeiro
    counts = np.round(_ptbxl_exams(ptbxl_dir, 3) * 1000).astype(np.int16)  # PTB-XL's ADC: 1000 per mV
    source = _tracings_file(tmp_path / "counts.hdf5", counts)
    assert main(["predict", str(saved), str(source), "--out", str(tmp_path / "scores.npy")]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tf-ecg: warning:")]
    assert len(warning) == 1 and warning[0].startswith(f"tf-ecg: warning: 3 of 3 exams: {source} exam 0: amplitude ")
    assert warning[0].endswith("pass --units uV")
    report = json.loads((tmp_path / "scores.npy.report.json").read_text())
    assert report["implausible_amplitude_exams"] == [0, 1, 2] and report["scored"] == 3
    assert main(["predict", str(saved), str(source), "--out", str(tmp_path / "again.npy"), "--units", "uV"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_bad_hdf5_files_are_clear_errors_and_write_nothing(ribeiro, tmp_path, capsys):
    _, saved = ribeiro
    good = np.zeros((2, 4096, 12), "float32")
    cases = {
        "other_name.hdf5": (_tracings_file(tmp_path / "other_name.hdf5", good, dataset="signals"),
                            "no dataset 'tracings' (the file has ['exam_id', 'signals'])"),
        "eight_leads.hdf5": (_tracings_file(tmp_path / "eight_leads.hdf5", good[..., :8]),
                             "dataset 'tracings' has shape (2, 4096, 8)"),
        "empty.hdf5": ((tmp_path / "empty.hdf5"), "empty.hdf5: empty file"),
    }
    (tmp_path / "empty.hdf5").write_bytes(b"")
    nan = good.copy()
    nan[1, 5, 5] = np.nan
    cases["nan.hdf5"] = (_tracings_file(tmp_path / "nan.hdf5", nan), "exam 1 of 'tracings' holds NaN")
    for name, (path, message) in cases.items():
        out = tmp_path / f"{name}.npy"
        assert main(["predict", str(saved), str(path), "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert message in error and name in error, error
        assert not out.exists() and not list(tmp_path.glob(f".{name}*"))


def test_weight_file_of_another_model_and_truncated_files(originals, tmp_path, capsys):
    glucose = originals / "weights" / "glucose" / "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"
    assert main(["export", "--preset", "e18_inception1d_regressor", "--weights", str(glucose),
                 "--out", str(tmp_path / "never")]) == 2
    assert "tensor 'layers.0.im.0.bottleneck.weight' missing" in capsys.readouterr().err
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(glucose.read_bytes()[:5000])
    assert main(["export", "--preset", "glucose_supervised", "--weights", str(truncated),
                 "--out", str(tmp_path / "never")]) == 2
    assert "cut.pth" in capsys.readouterr().err
    assert main(["export", "--preset", "e18_inception1d_regressor", "--out", str(tmp_path / "never")]) == 2
    assert "preset 'e18_inception1d_regressor' has no public weight file: give --weights hr_model.pth" \
        in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_autoecg_transfer_preset(ptbxl_dir, tmp_path):
    model = _random_weights(build_model("autoecg_transfer"), seed=3)
    write_tf_keras2_model_file(tmp_path / "transfer_model.h5", model)
    assert main(["export", "--preset", "autoecg_transfer", "--weights", str(tmp_path / "transfer_model.h5"),
                 "--out", str(tmp_path / "saved")]) == 0
    record = read_record(ptbxl_dir / "records100" / "00000" / "00002_lr")  # 100 Hz, resampled to 400
    expected = model.predict(to_code_format(record.select_leads(CODE_ORDER).signal, 100)[None], verbose=0)
    served = predict_file(tmp_path / "saved", record.path)
    np.testing.assert_allclose(served["outputs"], expected, rtol=1e-4, atol=1e-5)
    assert served["summary"]["recording"] == ("abnormal" if expected[0, 0] > 0.5 else "normal")
    assert_explains(tmp_path / "saved", record.path, tmp_path / "explained", method="grad_cam")


def test_generator_preset_uses_the_packaged_weights(tmp_path):
    from tf_ecg.deepfake import load_generator

    assert main(["export", "--preset", "pulse2pulse_generator", "--out", str(tmp_path / "generator")]) == 0
    noise = np.random.default_rng(0).uniform(-1, 1, (2, 5000, 8)).astype("float32")
    np.save(tmp_path / "noise.npy", noise)
    served = predict_file(tmp_path / "generator", tmp_path / "noise.npy")
    expected = 6000 * np.asarray(load_generator()(noise, training=False))
    np.testing.assert_allclose(served["outputs"], expected, atol=0.05)
    assert served["summary"] == {"ecgs": 2, "shape": [5000, 8], "units": "uV"}
    assert main(["explain", str(tmp_path / "generator"), str(tmp_path / "noise.npy"), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


@needs_torch
@pytest.mark.parametrize("preset,classes", [("e18_inception1d_regressor", 1), ("e18_inception1d_superclass", 5)])
def test_e18_presets_from_a_pytorch_state_dict(preset, classes, ptbxl_dir, tmp_path):
    import torch
    from torch_references import Inception1d, randomise_batch_norms

    torch.manual_seed(classes)
    original = randomise_batch_norms(Inception1d(classes))
    torch.save(original.state_dict(), tmp_path / "model.pth")
    assert main(["export", "--preset", preset, "--weights", str(tmp_path / "model.pth"),
                 "--out", str(tmp_path / "saved")]) == 0
    record = read_record(ptbxl_dir / "records500" / "00000" / "00003_hr").select_leads(get_preset(preset).input_spec.leads)
    x = record.signal.T[None]
    x = (x - x.min(axis=2, keepdims=True)) / (x.max(axis=2, keepdims=True) - x.min(axis=2, keepdims=True))
    with torch.no_grad():
        expected = original(torch.from_numpy(x.astype("float32"))).numpy()
    if classes > 1:
        expected = np.exp(expected) / np.exp(expected).sum(axis=1, keepdims=True)  # served as probabilities
    served = predict_file(tmp_path / "saved", ptbxl_dir / "records500" / "00000" / "00003_hr")
    np.testing.assert_allclose(served["outputs"], expected, rtol=1e-4, atol=1e-4)
    assert_explains(tmp_path / "saved", ptbxl_dir / "records500" / "00000" / "00003_hr", tmp_path / "explained",
                    method="grad_cam" if classes > 1 else "integrated_gradients")


@needs_torch
def test_mitbih_resnext_preset_from_a_pytorch_state_dict(mitdb_dir, tmp_path):
    import torch
    from torch_references import KModel, randomise_batch_norms
    from tf_ecg.data.spec import prepare_windows

    torch.manual_seed(0)
    original = randomise_batch_norms(KModel())
    torch.save(original.state_dict(), tmp_path / "kmodel.pth")
    assert main(["export", "--preset", "mitbih_resnext", "--weights", str(tmp_path / "kmodel.pth"),
                 "--out", str(tmp_path / "saved")]) == 0
    record = read_record(mitdb_dir / "100")
    write_record(tmp_path, "first_20s", record.signal[:360 * 20], 360, list(record.leads))
    served = predict_file(tmp_path / "saved", tmp_path / "first_20s")
    beats, _ = prepare_windows(record.signal[:360 * 20], 360, record.leads, get_preset("mitbih_resnext").input_spec,
                               "first_20s")
    with torch.no_grad():
        logits = original(torch.from_numpy(beats.transpose(0, 2, 1).copy())).numpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert len(served["outputs"]) == len(beats) > 15
    np.testing.assert_allclose(served["outputs"], expected, rtol=1e-4, atol=1e-4)
    assert_explains(tmp_path / "saved", tmp_path / "first_20s", tmp_path / "explained", method="grad_cam")


def test_input_contracts_page_has_a_section_per_preset():
    from conftest import REPO

    headings = [line for line in (REPO / "docs" / "input_contracts.md").read_text().splitlines()
                if line.startswith("### ")]
    for name in PRESETS:
        base, _, target = name.rpartition("_")
        assert any(name in h or (base == "e18_inception1d_regressor" and f"_{target}" in h) for h in headings), name


def test_lead_names_and_units_in_any_spelling():
    from tf_ecg.data.conventions import lead_indices, lead_key, to_millivolts, unit_name

    assert lead_key("DI") == lead_key("i") == lead_key("Lead I") == "I"
    assert lead_key("DIII") == lead_key("III") and lead_key("AVR") == lead_key("aVR") == "AVR"
    assert lead_key("MLII") == "MLII" != lead_key("II") and lead_key("V1") == "V1"
    assert lead_indices(CODE_ORDER, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], "f") == [0, 1, 6, 7, 8, 9, 10, 11]
    assert {unit_name(u) for u in ("µV", "μV", "uV", "microvolts")} == {"uV"}
    assert unit_name("millivolts") == "mV" and unit_name("V") == "V"
    np.testing.assert_allclose(to_millivolts(np.array([1000.0]), "µV"), [1.0])
    with pytest.raises(ECGDataError, match=r"rec\.hea: unknown amplitude unit 'adu'"):
        unit_name("adu", "rec.hea")
