"""System 5 on the real Apple Watch recordings and the original checkpoints."""

import json
from pathlib import Path

import numpy as np
import pytest

import tf_ecg
from conftest import assert_explains
from tf_ecg.cli import main
from tf_ecg.data.glucose import DATE_SPLIT, cached_study_beats
from tf_ecg.errors import ECGDataError
from tf_ecg.evaluation.glucose import evaluate_comparator, evaluate_supervised, reference_bank
from tf_ecg.saved_model import export_model
from tf_ecg.predict import predict_file
from tf_ecg.models.effnetv2 import make_divisible
from tf_ecg.weights import find_state_dict, read_torch_checkpoint
from tf_ecg.weights.mappings import apply_torch_state_dict

SUPERVISED = "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"
COMPARATOR = "effnetv2_ecg_comparator_v5_l_xxxs_20240111_epoch100_4e-3.pth"


@pytest.fixture(scope="module")
def beats(shared_data):
    return cached_study_beats(str(shared_data / "applewatch-glucose"))


@pytest.fixture(scope="module")
def reference(originals):
    return np.load(originals / "reference" / "glucose-original-outputs.npz")


@pytest.fixture(scope="module")
def supervised(originals):
    return tf_ecg.load_original_weights(tf_ecg.build_model("effnetv2_ecg_l_xxxs"),
                                        originals / "weights" / "glucose" / SUPERVISED)


@pytest.fixture(scope="module")
def comparator(originals):
    return tf_ecg.load_original_weights(tf_ecg.build_model("effnetv2_comparator_v5"),
                                        originals / "weights" / "glucose" / COMPARATOR)


def test_beat_counts_of_the_date_split(beats, shared_data):
    assert len(beats.labels) == 8_543
    counts = {name: np.bincount(beats.dates(dates).labels).tolist() for name, dates in DATE_SPLIT.items()}
    assert counts == {"train": [3_069, 2_294], "val": [978, 1_193], "test": [779, 230]}
    later = cached_study_beats(str(shared_data / "applewatch-glucose-2024-01"), leading_samples_removed=10)
    assert np.bincount(later.labels).tolist() == [405, 95]
    assert beats.beats.shape[1] == 384 and 300 < np.median(beats.beats[:, -1]) < 500  # RR in samples


def test_segmentation_reproduces_the_originals_beats(beats, reference):
    test = beats.dates(DATE_SPLIT["test"]).beats.astype(np.float32)  # the reference is stored as float32
    for beat in reference["beats"]:
        assert (test == beat).all(axis=1).any()


def test_parameter_counts_and_make_divisible():
    assert [make_divisible(v, 8) for v in (4, 2, 16, 12)] == [8, 8, 16, 16]
    for name, trainable, total in (("effnetv2_ecg_l_xxxs", 8_419, 9_333), ("effnetv2_comparator_v5", 8_771, 9_717)):
        model = tf_ecg.build_model(name)
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
        assert model.count_params() == total
    encoder = tf_ecg.build_model("effnetv2_comparator_v5").get_layer("encoder")
    assert encoder.output_shape == (None, 96, 8)
    assert encoder.get_layer("block3_dw_conv").output.shape[1] == 192  # stride 2: pad 1 + valid


def test_supervised_checkpoint_parity(supervised, reference):
    p = np.asarray(supervised(reference["beats"][..., None].astype("float32"), training=False))[:, 0]
    assert np.abs(p - reference["supervised_prob"]).max() < 1e-4


def test_comparator_checkpoint_parity(comparator, reference):
    p = np.asarray(comparator([reference["reference_beats"][..., None].astype("float32"),
                               reference["beats"][..., None].astype("float32")], training=False))[:, 0]
    assert np.abs(p - reference["comparator_prob_different"]).max() < 1e-4


def test_pytorch_references_reproduce_the_originals_outputs(originals, reference):
    """The spec-written PyTorch modules that benchmarks/throughput.py times beside the ports
    compute, with the shipped checkpoints, what the original computed."""
    torch = pytest.importorskip("torch")
    from torch_references import GlucoseComparator, GlucoseEffNetV2

    beats, references = (torch.tensor(reference[key][:, None], dtype=torch.float32) for key in ("beats", "reference_beats"))
    for module, file, key in ((GlucoseEffNetV2, SUPERVISED, "supervised_prob"),
                              (GlucoseComparator, COMPARATOR, "comparator_prob_different")):
        net = module()
        state = torch.load(originals / "weights" / "glucose" / file, map_location="cpu", weights_only=False)["model"]
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
        with torch.no_grad():
            p = net.eval()(beats) if module is GlucoseEffNetV2 else net.eval()(references, beats)
        assert np.abs(p.numpy()[:, 0] - reference[key]).max() < 1e-6


def test_comparator_map_accepts_both_sequence_spellings(originals, reference, comparator):
    state = find_state_dict(read_torch_checkpoint(originals / "weights" / "glucose" / COMPARATOR))
    renamed = {k.replace("features_encoder", "feature_encoder").replace("features_comparator", "feature_comparator"): v
               for k, v in state.items()}
    model = tf_ecg.build_model("effnetv2_comparator_v5")
    apply_torch_state_dict(model, renamed, "renamed.pth")
    x = [reference["reference_beats"][:4, :, None].astype("float32"), reference["beats"][:4, :, None].astype("float32")]
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.asarray(comparator(x, training=False)))


def test_original_results_on_the_test_dates(beats, supervised, comparator):
    test = beats.dates(DATE_SPLIT["test"])
    scores = evaluate_supervised(supervised, test)
    assert scores["beat_correct"] == 993 and scores["recording_correct"] == scores["recording_total"] == 32
    voting = evaluate_comparator(comparator, test, reference_bank(beats.dates(DATE_SPLIT["train"]), seed=0))
    assert voting["beat_accuracy"] > 0.985 and voting["recording_correct"] == 32
    assert voting["beat_sensitivity_glucose_recall"] == 1.0


def _apple_health_export(values_file, path, unit="µV", scale=1.0):
    values = "\n".join(f"{float(v) * scale:.6f}" for v in values_file.read_text().split())
    path.write_text("Name,Jane Doe\nRecorded Date,2023-10-07 09:00:00 +0800\nClassification,Sinus Rhythm\n"
                    f"Sample Rate,512 hertz\nLead,Lead I\nUnit,{unit}\n\n" + values, encoding="utf-8")
    return path


def test_presets_predict_on_apple_health_exports(originals, shared_data, supervised, comparator, beats,
                                                 tmp_path, capsys):
    """Both glucose presets export from the original checkpoints and predict from the command
    line on an Apple Health export; the comparator's decisions equal the evaluation's."""
    recording = sorted((shared_data / "applewatch-glucose" / "1007" / "glucose1").glob("*.csv"))[0]
    health = _apple_health_export(recording, tmp_path / "ecg_2023-10-07.csv")
    in_millivolts = _apple_health_export(recording, tmp_path / "ecg_mV.csv", unit="mV", scale=1e-3)
    for preset, weights in (("glucose_supervised", SUPERVISED), ("glucose_comparator", COMPARATOR)):
        saved = tmp_path / preset
        assert main(["export", "--preset", preset, "--weights", str(originals / "weights" / "glucose" / weights),
                     "--out", str(saved), "--data-root", str(shared_data)]) == 0
        metadata = json.loads((saved / "assets.extra" / "tf_ecg.json").read_text())
        assert metadata["weights"]["published_file"] is True and metadata["thresholds"] == 0.5
        capsys.readouterr()
        assert main(["predict", str(saved), str(health), "--out", str(tmp_path / f"{preset}.json")]) == 0
        summary = json.loads(capsys.readouterr().out)["summary"]
        result = json.loads((tmp_path / f"{preset}.json").read_text())
        assert summary["recording"] == "glucose" and sum(summary["votes"].values()) == len(result["outputs"]) > 20
        # the values-only file and a header that says millivolts give the same decisions
        assert predict_file(saved, recording)["summary"] == summary
        assert predict_file(saved, in_millivolts)["predicted"] == result["predicted"]
    assert_explains(tmp_path / "glucose_supervised", health, tmp_path / "explained")
    assert main(["explain", str(tmp_path / "glucose_comparator"), str(health), "--out", str(tmp_path / "x")]) == 2
    assert "this model is a comparator" in capsys.readouterr().err and not (tmp_path / "x").exists()

    # the served comparator (its bank inside) gives the evaluation's per-beat and recording decisions
    from tf_ecg.data.formats.applewatch import read_applewatch_csv
    from tf_ecg.data.glucose import trimmed_beats
    from tf_ecg.evaluation.glucose import bank_comparisons, beat_decisions, recording_decision

    different = bank_comparisons(comparator, trimmed_beats(read_applewatch_csv(recording).signal, recording)[0],
                                 reference_bank(beats.dates(DATE_SPLIT["train"]), seed=0))
    names = ("fast", "glucose")
    assert result["predicted"] == [names[b] for b in beat_decisions(different)[0]]
    assert result["summary"]["recording"] == names[recording_decision(different)[0]]

    short = tmp_path / "ecg_short.csv"
    short.write_text("\n".join(recording.read_text().splitlines()[:1800]))
    with pytest.raises(ECGDataError, match=r"ecg_short\.csv: 1800 samples: too short"):
        predict_file(tmp_path / "glucose_supervised", short)
    unknown = _apple_health_export(recording, tmp_path / "ecg_counts.csv", unit="counts")
    assert main(["predict", str(tmp_path / "glucose_supervised"), str(unknown)]) == 2
    assert "ecg_counts.csv: unknown amplitude unit 'counts'" in capsys.readouterr().err


def test_comparator_recipe_trains_on_pairs(shared_data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(Path(__file__).resolve().parents[1] / "models" / "glucose_comparator.toml"), "--data-root", str(shared_data),
                 "--run-dir", str(run_dir), "--epochs", "1"]) == 0
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["task"] == "binary" and report["n"] == 1009 // 128 * 64  # pairs of the test beats
    # the trained comparator is served against a bank of its own training beats
    assert main(["export", str(run_dir), "--out", str(tmp_path / "saved"), "--data-root", str(shared_data)]) == 0
    recording = sorted((shared_data / "applewatch-glucose" / "1002" / "fast1").glob("*.csv"))[0]
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "saved"), str(recording)]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["recording"] in ("fast", "glucose") and max(summary["recording_votes"].values()) <= 50
    metadata = json.loads((tmp_path / "saved" / "assets.extra" / "tf_ecg.json").read_text())
    assert metadata["task"] == "comparator" and metadata["reference_bank"]["per_class"] == 50
