"""SavedModel export of a trained run or of an original's weight file (a preset).

The export serves probabilities (softmax/sigmoid folded into the graph for models
trained on logits), takes millivolt windows at the model's rate (``tf_ecg.serving``:
unit scaling, padding and min-max inside the graph) and carries
``assets.extra/tf_ecg.json``: the input spec, serving contract, output names, task and
thresholds, so that ``tf_ecg.predict`` prepares any recording as training did.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_ecg.building import build_model
from tf_ecg.data.paths import check_output_dir, sha256_of
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError, RunError, WeightFileError
from tf_ecg.evaluation.calibration import fit_calibration
from tf_ecg.evaluation.metrics import strict_json
from tf_ecg.serving import class_activation_endpoints, comparator_serving_model, serving_contract, serving_model
from tf_ecg.weights import load_original_weights

METADATA = Path("assets.extra") / "tf_ecg.json"


SAVED_MODEL_ENTRIES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra"}


def is_tf_ecg_export(path: Path) -> bool:
    """A folder holding nothing but a SavedModel that tf_ecg exported (safe to replace)."""
    entries = {p.name for p in Path(path).iterdir()}
    return (Path(path) / METADATA).is_file() and "saved_model.pb" in entries and entries <= SAVED_MODEL_ENTRIES


def export_run(run_dir: str | Path, out_dir: str | Path, which: str = "best", data_root=None) -> Path:
    """Export ``<run_dir>/<which>.keras`` as a SavedModel into ``out_dir`` (atomically).

    The task, outputs and thresholds come from the run's resolved recipe. ``out_dir`` must
    be new, empty or an earlier tf_ecg export, and apart from the run directory. A glucose
    comparator run is served with a reference bank drawn (the recipe's seed) from its
    training beats, which are read again from ``data_root``."""
    from tf_ecg.training.trainer import load_run_recipe, read_run_record, validation_outputs

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    recipe = load_run_recipe(run_dir)
    check_output_dir(out_dir, is_tf_ecg_export, protect=[run_dir], what="SavedModel")
    model_file = run_dir / f"{which}.keras"
    spec_file = run_dir / "input_spec.json"
    if not model_file.is_file() or not spec_file.is_file():
        raise RunError(run_dir, f"the run has not finished (no {model_file.name} / {spec_file.name})")
    metadata = json.loads(spec_file.read_text())
    spec = InputSpec(**metadata["input_spec"])
    metadata.update({"task": recipe.task, "outputs": recipe.training.outputs,
                     "thresholds": recipe.training.thresholds, "serving": serving_contract(spec),
                     "recipe": recipe.to_dict(),
                     "run": {"dir": str(run_dir), "model": str(model_file),
                             "data_fingerprint": read_run_record(run_dir).get("data", {}).get("fingerprint")}})
    model = keras.models.load_model(model_file)
    if is_comparator(model):
        from tf_ecg.data.sources import load_source
        from tf_ecg.evaluation.glucose import draw_reference_bank

        beats, labels = load_source(recipe.data, data_root).train
        bank = draw_reference_bank(beats[..., 0], labels, recipe.training.seed)
        metadata.update({"task": "comparator", "reference_bank": {
            "from": "the run's training beats", "seed": recipe.training.seed, "per_class": len(bank[0]),
            "classes": metadata["output_names"]}})
        return export_model(comparator_serving_model(model, spec, bank), out_dir, metadata)
    raw, labels = validation_outputs(run_dir, model, which, data_root)
    calibration = fit_calibration(recipe.task, recipe.training.outputs, raw, labels, metadata["output_names"])
    metadata["calibration"] = calibration
    serving, endpoints = calibrated_serving(model, spec, recipe.task, recipe.training.outputs, calibration)
    return export_model(serving, out_dir, metadata, endpoints)


def calibrated_serving(model: keras.Model, spec: InputSpec, task: str, outputs: str,
                       calibration: dict | None) -> tuple[keras.Model, dict]:
    """The serving model (temperature-scaled where ``calibration`` holds a temperature) and
    the other endpoints: ``features`` and ``head`` for Grad-CAM
    (``tf_ecg.serving.class_activation_endpoints``). The network's own probabilities are not a
    further endpoint (each one is traced at export): :class:`ExportedModel` undoes the
    temperature exactly."""
    temperature = (calibration or {}).get("temperature")
    return (serving_model(model, spec, task, outputs, temperature),
            class_activation_endpoints(model, spec, task, outputs, temperature))


def is_comparator(model: keras.Model) -> bool:
    """A siamese comparator (encoder + comparator head), served against a reference bank."""
    names = {layer.name for layer in model.layers}
    return {"encoder", "comparator_head"} <= names


def export_preset(name: str, weights: str | Path | None, out_dir: str | Path, data_root=None,
                  bank_seed: int = 0, calibration_data: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """A SavedModel from an original's own weight file, described by preset ``name``
    (``tf_ecg.published``); the metadata is that of an exported run: input spec, serving
    contract, outputs, task, thresholds, plus the preset and the weight file's sha256."""
    from tf_ecg.published import get_preset

    preset = get_preset(name)
    check_output_dir(out_dir, is_tf_ecg_export, what="SavedModel")  # before the work
    weights = preset_weight_file(name, weights)
    model = load_original_weights(build_model(preset.model, **preset.options), weights)
    digest = sha256_of(weights)
    provenance = {"file": str(Path(weights).resolve()), "sha256": digest,
                  "published_file": preset.weights.sha256 is not None and digest == preset.weights.sha256}
    return export_preset_model(name, model, out_dir, provenance, data_root, bank_seed, calibration_data)


def preset_weight_file(name: str, weights: str | Path | None) -> Path:
    """The weight file of preset ``name``: ``weights`` as given (a path, or a URL fetched into
    the cache), else the preset's published file (fetched, checked against its sha256), else
    the generator's packaged file; a preset with no public file needs ``weights``."""
    from tf_ecg.published import get_preset
    from tf_ecg.weights.fetch import fetch_weights

    source = get_preset(name).weights
    if weights is not None and str(weights).startswith(("http://", "https://")):
        return fetch_weights(str(weights), Path(str(weights).split("?")[0]).name or source.file)
    if weights is not None:
        return Path(weights)
    if source.url is not None:
        return fetch_weights(source.url, source.file, source.sha256, source.member)
    if get_preset(name).model == "pulse2pulse_generator":
        from tf_ecg.deepfake import generator_checkpoint

        return generator_checkpoint()
    raise WeightFileError(None, f"preset {name!r} has no public weight file: give --weights {source.file} "
                                f"({source.where})")


def export_preset_model(name: str, model: keras.Model, out_dir: str | Path, weights: dict | None = None,
                        data_root=None, bank_seed: int = 0,
                        calibration_data: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Export ``model`` (weights already in place) as preset ``name`` serves it."""
    from tf_ecg.published import get_preset

    preset = get_preset(name)
    spec = preset.input_spec
    if calibration_data is not None and preset.task in ("generator", "comparator"):
        raise ECGDataError(None, f"preset {name!r} ({preset.task}) serves no probabilities to calibrate")
    metadata = {"input_spec": spec.to_dict(), "output_names": preset.output_names, "task": preset.task,
                "outputs": preset.outputs, "thresholds": preset.thresholds, "output_units": preset.output_units,
                "preset": preset.to_dict(), "weights": weights}
    if preset.task == "generator":
        serving = generator_serving_model(model)
        metadata["serving"] = {"input": {"noise": "uniform in [-1, 1]", "shape": [spec.length, spec.num_leads]},
                               "in_graph": ["x 6000: microvolts"], "outside_graph": []}
    elif is_comparator(model):
        from tf_ecg.data.glucose import DATE_SPLIT, cached_study_beats
        from tf_ecg.data.paths import dataset_dir
        from tf_ecg.evaluation.glucose import reference_bank

        study = cached_study_beats(str(dataset_dir("applewatch-glucose", data_root)))
        bank = reference_bank(study.dates(DATE_SPLIT["train"]), seed=bank_seed)
        serving = comparator_serving_model(model, spec, bank)
        metadata["serving"] = serving_contract(spec)
        metadata["reference_bank"] = {"dates": list(DATE_SPLIT["train"]), "seed": bank_seed,
                                      "per_class": len(bank[0]), "classes": preset.output_names}
    else:
        serving, endpoints = calibrated_serving(model, spec, preset.task, preset.outputs, None)
        metadata["serving"] = serving_contract(spec)
        if calibration_data is not None:
            windows, labels = calibration_data
            _check_windows(windows, spec, name)
            served = serving.predict(windows, verbose=0)  # probabilities (or values) of the original
            metadata["calibration"] = fit_calibration(preset.task, "probabilities" if preset.task != "regression"
                                                      else "values", served, labels, preset.output_names)
            metadata["calibration"]["fitted_on"] = f"--calibration-data ({len(labels)} labelled windows)"
            serving, endpoints = calibrated_serving(model, spec, preset.task, preset.outputs, metadata["calibration"])
        return export_model(serving, out_dir, metadata, endpoints)
    return export_model(serving, out_dir, metadata)


def read_labelled_windows(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``windows`` (n, length, leads) in mV and their ``labels`` from an ``.npz`` file."""
    path = Path(path)
    if not path.is_file():
        raise ECGDataError(path, "calibration data not found")
    try:
        with np.load(path) as content:
            windows, labels = np.asarray(content["windows"], np.float32), np.asarray(content["labels"])
    except KeyError:
        raise ECGDataError(path, "labelled calibration data are an .npz with arrays 'windows' (n, length, leads) "
                                 "in mV and 'labels'") from None
    except (ValueError, OSError) as error:
        raise ECGDataError(path, f"not a readable .npz file ({error})") from None
    if len(windows) != len(labels) or len(windows) < 2:
        raise ECGDataError(path, f"{len(windows)} windows and {len(labels)} labels: need as many labels as "
                                 f"windows, and at least 2")
    if not np.isfinite(windows).all():
        raise ECGDataError(path, "the windows hold NaN or infinite values")
    return windows, labels


def _check_windows(windows: np.ndarray, spec: InputSpec, name: str) -> None:
    from tf_ecg.serving import serving_input_shape

    expected = serving_input_shape(spec)
    if windows.ndim != 3 or any(e is not None and e != w for e, w in zip(expected, windows.shape[1:])):
        raise ECGDataError(None, f"calibration windows of shape {windows.shape[1:]}: preset {name!r} takes "
                                 f"{tuple('any' if e is None else e for e in expected)} windows in mV")


def generator_serving_model(generator: keras.Model) -> keras.Model:
    from tf_ecg.models.pulse2pulse import MICROVOLTS_PER_UNIT

    noise = keras.Input(generator.input_shape[1:], name="noise")
    ecg = keras.layers.Rescaling(MICROVOLTS_PER_UNIT, name="microvolts")(generator(noise))
    return keras.Model(noise, ecg, name=f"{generator.name}_serving")


def export_model(model: keras.Model, out_dir: str | Path, metadata: dict,
                 endpoints: dict[str, keras.Model] | None = None) -> Path:
    """Write a SavedModel with tf_ecg's metadata: ``model`` serves (``serve``, the default
    signature); ``endpoints`` are further functions (e.g. ``features``, ``head``).
    What was at ``out_dir`` is replaced only when it is an earlier tf_ecg export (checked),
    and only once the new one is complete."""
    out_dir = check_output_dir(out_dir, is_tf_ecg_export, what="SavedModel")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        archive = keras.export.ExportArchive()
        for name, endpoint in {"serve": model, **(endpoints or {})}.items():
            signature = [tf.TensorSpec((None, *endpoint.input_shape[1:]), tf.float32, name=endpoint.inputs[0].name)]
            archive.track_and_add_endpoint(name, endpoint, signature)
        metadata = {**metadata, "endpoints": ["serve", *(endpoints or {})]}
        archive.write_out(str(staging / "model"), verbose=False)
        (staging / "model" / METADATA).parent.mkdir(parents=True, exist_ok=True)
        (staging / "model" / METADATA).write_text(strict_json(metadata))
        if out_dir.exists():
            out_dir.rename(staging / "previous")  # only a checked tf_ecg export gets here
        (staging / "model").rename(out_dir)  # nothing half-written at out_dir
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


class ExportedModel:
    """A loaded SavedModel (kept referenced: its serving function needs its variables)."""

    def __init__(self, loaded, metadata: dict):
        self.loaded, self.metadata = loaded, metadata

    def __call__(self, windows: np.ndarray, raw: bool = False) -> np.ndarray:
        """Served outputs (calibrated where the export carries a temperature); ``raw``: the
        network's own probabilities, the temperature undone (softmax(T log p), or
        sigmoid(T logit p) per output: exact, as a temperature only scales logits)."""
        served = np.asarray(self.loaded.serve(tf.constant(windows)))
        temperature = (self.metadata.get("calibration") or {}).get("temperature")
        if not raw or temperature is None:
            return served
        p, temperature = served.astype(np.float64), np.asarray(temperature, np.float64)
        with np.errstate(divide="ignore", over="ignore"):
            if self.metadata["task"] == "multiclass":
                scaled = temperature * np.log(p)
                scaled -= scaled.max(axis=1, keepdims=True)
                unscaled = np.exp(scaled) / np.exp(scaled).sum(axis=1, keepdims=True)
            else:
                unscaled = 1 / (1 + np.exp(-temperature * (np.log(p) - np.log1p(-p))))
        return unscaled.astype(np.float32)


METADATA_KEYS = ("input_spec", "output_names", "task", "serving")


def load_exported(saved_model_dir: str | Path) -> ExportedModel:
    saved_model_dir = Path(saved_model_dir)
    if not saved_model_dir.exists():
        raise ECGDataError(saved_model_dir, "SavedModel folder not found")
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise ECGDataError(saved_model_dir, "not a SavedModel (no saved_model.pb in this folder)")
    metadata_file = saved_model_dir / METADATA
    if not metadata_file.is_file():
        raise ECGDataError(metadata_file, "not exported by tf_ecg (no tf_ecg.json)")
    try:
        metadata = json.loads(metadata_file.read_text())
        missing = [key for key in METADATA_KEYS if key not in metadata]
        InputSpec(**metadata["input_spec"]) if "input_spec" in metadata else None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError) as error:
        raise ECGDataError(metadata_file, f"corrupt tf_ecg metadata ({error})") from None
    if missing == ["serving"]:
        raise ECGDataError(metadata_file, "exported by an earlier tf_ecg, whose SavedModels took normalised "
                                          "windows: export the run or preset again")
    if not isinstance(metadata, dict) or missing:
        raise ECGDataError(metadata_file, f"corrupt tf_ecg metadata (missing {missing})")
    return ExportedModel(tf.saved_model.load(str(saved_model_dir)), metadata)
