"""The Python face of tf_ecg: what ``tf-ecg`` does, as functions a notebook calls.

Every command of the CLI is a thin shell over one of these (``tf_ecg.cli``), so a notebook
and a terminal get the same checks, files and errors. They are exported as ``tf_ecg.train``,
``tf_ecg.evaluate``, ... (imported on first use, so ``import tf_ecg`` stays fast).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tf_ecg import require_tensorflow
from tf_ecg.config import Recipe, load_recipe
from tf_ecg.data.formats.recording import Recording, read_recording as _read_recording
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import ECGDataError

if TYPE_CHECKING:
    from tf_ecg.data.sources import Splits
    from tf_ecg.training.trainer import TrainingResult


def train(recipe: str | Path | Recipe, run_dir: str | Path | None = None, *, data_root: str | Path | None = None,
          epochs: int | None = None, overrides: dict | None = None, minutes: float | None = None,
          restart: bool = False, verbose: int = 2, splits: Splits | None = None) -> TrainingResult:
    """Train a recipe into a run directory; calling it again on the same directory resumes.

    Args:
        recipe: a recipe file, a packaged recipe's name (``"quickstart_mitbih"``; see
            ``tf_ecg/recipes/``) or a loaded :class:`tf_ecg.config.Recipe`.
        run_dir: where the run is written (default ``runs/<recipe name>``): resolved recipe,
            ``run.json``, TensorBoard logs, ``best.keras`` / ``final.keras``, ``history.csv``,
            test report and test outputs.
        data_root: the folder holding ``mitdb/``, ``ptbxl/``, ... (default ``$TF_ECG_DATA_ROOT``).
        epochs: replaces ``training.epochs``.
        overrides: recipe values by dotted key, e.g. ``{"training.batch_size": 64}``.
        minutes: start no epoch after this many minutes; the run is then paused
            (``result.paused``) and the same call continues it.
        restart: replace an earlier run in ``run_dir``.
        verbose: Keras' progress output (0 silent, 1 bar, 2 a line per epoch).
        splits: the data to train on instead of the recipe's source, e.g. a subset of
            :func:`load_data` (the run records their fingerprint).

    Returns:
        The run: ``run_dir``, the trained ``model`` (the kept one: best or final), the
        ``splits``, the ``test_report`` (None while paused) and the ``seconds`` taken.
    """
    from tf_ecg.training.trainer import train as run_training  # on JAX or PyTorch, TensorFlow is optional

    recipe = _recipe(recipe, {**(overrides or {}), **({"training.epochs": epochs} if epochs is not None else {})})
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / recipe.name
    return run_training(recipe, run_dir, data_root=data_root, splits=splits, restart=restart, minutes=minutes,
                        verbose=verbose)


def _recipe(recipe: str | Path | Recipe, overrides: dict) -> Recipe:
    if isinstance(recipe, Recipe):
        return load_recipe(recipe.path, {**recipe.overrides, **overrides}) if overrides else recipe
    return load_recipe(recipe, overrides)


def load_data(recipe: str | Path | Recipe, *, data_root: str | Path | None = None,
              overrides: dict | None = None) -> Splits:
    """The train / validation / test data a recipe trains on, as :func:`train` builds them.

    Args:
        recipe: a recipe file, a packaged recipe's name or a loaded recipe.
        data_root: the folder holding ``mitdb/``, ``ptbxl/``, ... (default ``$TF_ECG_DATA_ROOT``).
        overrides: recipe values by dotted key, e.g. ``{"data.sampling_rate": 100}``.

    Returns:
        :class:`tf_ecg.data.sources.Splits`: ``train``, ``val``, ``test`` as (inputs, labels)
        arrays in the model's units and layout, the ``input_spec``, ``output_names`` and what
        each example came from (``ids``); a sharded source answers the same from its shards.
    """
    from tf_ecg.data.sources import load_source

    return load_source(_recipe(recipe, dict(overrides or {})).data, data_root)


def leave_one_out(recipe: str | Path = "loo_conv1d_leave_one_out", out: str | Path = "runs/leave_one_out", *,
                  data_root: str | Path | None = None, records: list[str] | None = None,
                  pool: list[str] | None = None, overrides: dict | None = None) -> dict:
    """MIT-BIH leave-one-patient-out with ``loo_conv1d`` (system 4), with and without transfer.

    Each held-out record is a fold: the network trains on the other records, then (transfer)
    fine-tunes on the record's first 10 minutes and is scored on its last 20. Finished folds
    are skipped, so calling it again on ``out`` resumes.

    Args:
        recipe: a leave-one-out recipe file or packaged name.
        out: the folder for the folds, TensorBoard logs and ``report.json``.
        data_root: the folder holding ``mitdb/``.
        records: the records held out in turn (default: every record of the pool).
        pool: the records the folds draw on (default: all 48).
        overrides: e.g. ``{"leave_one_out.epochs": 3}``.

    Returns:
        The pooled report: per variant (baseline, transfer) the pooled and per-fold scores,
        AAMI SVEB / VEB Se and +P and confusion matrices.
    """
    require_tensorflow()
    from tf_ecg.config import load_leave_one_out_recipe
    from tf_ecg.data.paths import dataset_dir
    from tf_ecg.training.leave_one_out import run_leave_one_out

    loaded = load_leave_one_out_recipe(recipe, overrides)
    return run_leave_one_out(dataset_dir("mitdb", data_root), Path(out), records, loaded.leave_one_out, pool=pool)


def evaluate(run_dir: str | Path | None = None, *, which: str = "best", split: str = "test",
             data_root: str | Path | None = None, labels: str | Path | None = None,
             predictions: str | Path | None = None, thresholds: str | None = None) -> dict:
    """Score a finished run on one split, or a file of predictions against a file of labels.

    Args:
        run_dir: a run directory: ``<which>.keras`` is scored on ``split`` rebuilt from the
            run's recipe; ``evaluate_<which>_<split>.json`` and plots are written into it.
        which: ``"best"`` or ``"final"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        data_root: where the run's data set is.
        labels: instead of a run: a 0/1 labels CSV (e.g. CODE's ``gold_standard.csv``).
        predictions: with ``labels``: 0/1 predictions (CSV) or sigmoid scores (``.npy``).
        thresholds: for ``.npy`` scores: ``"table2"`` (Ribeiro's), one value, or one per class.

    Returns:
        The report: per-class Se, +P, specificity, F1 (and AUC for scores), macro averages,
        confusion matrix (classification) or MAE / RMSE / R² per target (regression); a run's
        report says whether the data match those the run recorded (``data_matches_run``).
    """
    if labels is not None or predictions is not None:
        if labels is None or predictions is None or run_dir is not None:
            raise ECGDataError(None, "evaluate takes a run directory, or labels and predictions together")
        from tf_ecg.evaluation.label_files import evaluate_label_files

        return evaluate_label_files(labels, predictions, thresholds)
    if run_dir is None:
        raise ECGDataError(None, "evaluate needs a run directory, or labels and predictions")
    require_tensorflow()
    from tf_ecg.training.trainer import evaluate_run

    return evaluate_run(run_dir, which, split, data_root)


def export(run_dir: str | Path | None = None, out: str | Path | None = None, *, preset: str | None = None,
           weights: str | Path | None = None, which: str = "best", data_root: str | Path | None = None,
           file_format: str = "saved_model", quantize: str = "none",
           calibration_data: str | Path | np.ndarray | None = None) -> Path:
    """Export a run, or an original's weight file through a preset, as a SavedModel, a LiteRT
    (``.tflite``) or an ONNX file.

    Every format takes windows in millivolts at the model's rate (scaling and normalisation
    inside it) and carries its input contract, outputs and thresholds (SavedModel:
    ``assets.extra/tf_ecg.json``; LiteRT / ONNX: ``<file>.json``); :func:`load` and
    ``tf-ecg predict`` serve a SavedModel. A run's classifier serves temperature-scaled
    probabilities fitted on its validation split (``load(...).predict(raw=True)``: the raw ones); a
    regressor carries a 90 % split-conformal interval; the metadata records both.

    Args:
        run_dir: a finished run directory (exports ``<which>.keras``).
        out: the SavedModel folder (default ``saved_models/<run or preset name>``; it must
            be new, empty or an earlier tf_ecg export), or the ``.tflite`` / ``.onnx`` file.
        preset: instead of a run: a preset name (:func:`presets`).
        weights: with ``preset``: the original's weight file (``.hdf5``, ``.pth``, ``.pt``) or
            its URL; default: the preset's published file, fetched and checked.
        which: ``"best"`` or ``"final"`` (runs).
        data_root: where a comparator's reference beats (and a run's training split) are read from.
        file_format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        quantize: LiteRT only: ``"none"``, ``"dynamic"`` or ``"int8"``.
        calibration_data: a preset's SavedModel: labelled windows (``.npz`` with ``windows``
            ``(n, length, leads)`` in mV and ``labels``) on which the served probabilities are
            calibrated (a run calibrates on its validation split). ``int8``: serving windows
            (an array or a ``.npy``); default for a run: 256 windows of its training split.

    Returns:
        The SavedModel folder or the exported file.
    """
    require_tensorflow()
    import keras

    if keras.backend.backend() != "tensorflow":
        return _export_under_tensorflow(run_dir, out, preset, weights, which, data_root, file_format, quantize,
                                        calibration_data)
    if file_format != "saved_model":
        return _export_edge(run_dir, out, preset, weights, which, data_root, file_format, quantize, calibration_data)
    if quantize != "none":
        raise ECGDataError(None, "--quantize goes with --format tflite")
    from tf_ecg.saved_model import export_preset, export_run, read_labelled_windows

    if calibration_data is not None and preset is None:
        raise ECGDataError(calibration_data, "a run calibrates on its own validation split: --calibration-data "
                                             "goes with a preset (or with --quantize int8)")
    if preset is not None:
        if run_dir is not None:
            raise ECGDataError(run_dir, "give a run directory or a preset, not both")
        labelled = read_labelled_windows(calibration_data) if calibration_data is not None else None
        return export_preset(preset, weights, Path(out or f"saved_models/{preset}"), data_root=data_root,
                             calibration_data=labelled)
    if run_dir is None:
        raise ECGDataError(None, "export needs a run directory, or a preset and its weights")
    if weights is not None:
        raise ECGDataError(weights, "weights go with a preset; a run exports its own weights")
    run_dir = Path(run_dir)
    return export_run(run_dir, Path(out or f"saved_models/{run_dir.name}"), which, data_root)


def _export_under_tensorflow(run_dir, out, preset, weights, which, data_root, file_format, quantize,
                             calibration_data) -> Path:
    """Export from a JAX or PyTorch process: ``tf-ecg export`` in a child process on the
    TensorFlow backend (a ``.keras`` file and the weights are the same on every backend). The
    SavedModel is then the TensorFlow graph a TensorFlow-trained run exports, which LiteRT and
    ONNX convert, rather than jax2tf's embedded StableHLO (and PyTorch has no SavedModel path)."""
    import os
    import subprocess
    import sys
    import tempfile

    from tf_ecg.errors import TfEcgInputError

    with tempfile.TemporaryDirectory() as folder:
        if isinstance(calibration_data, np.ndarray):
            np.save(Path(folder) / "windows.npy", calibration_data)
            calibration_data = Path(folder) / "windows.npy"
        options = {"--preset": preset, "--weights": weights, "--out": out, "--data-root": data_root,
                   "--calibration-data": calibration_data}
        command = [sys.executable, "-m", "tf_ecg.cli", "export", *([str(run_dir)] if run_dir is not None else []),
                   "--which", which, "--format", file_format, "--quantize", quantize,
                   *[part for key, value in options.items() if value is not None for part in (key, str(value))]]
        done = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": "tensorflow"}, capture_output=True,
                              text=True)
    if done.returncode == 2:  # an input error, already one line
        raise TfEcgInputError(None, done.stderr.strip().splitlines()[-1].removeprefix("tf-ecg: error: "))
    if done.returncode:
        raise RuntimeError(f"export on the TensorFlow backend failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1].split(" written to ", 1)[1])


def _export_edge(run_dir, out, preset, weights, which, data_root, file_format, quantize, calibration_data) -> Path:
    """A SavedModel in a temporary folder, converted (tf_ecg.edge)."""
    import tempfile

    from tf_ecg.data.formats.recording import read_npy_array
    from tf_ecg.edge import SUFFIXES, check_edge_request, export_edge

    name = preset or (Path(run_dir).name if run_dir is not None else "model")
    out = check_edge_request(out or f"saved_models/{name}{SUFFIXES.get(file_format, '')}", file_format, quantize)
    representative = None
    if quantize == "int8":
        if calibration_data is not None:
            representative = (read_npy_array(calibration_data) if not isinstance(calibration_data, np.ndarray)
                              else calibration_data)
        elif run_dir is not None:
            representative = _training_windows(run_dir, data_root)
        else:
            raise ECGDataError(None, "--quantize int8 of a preset needs --calibration-data WINDOWS.npy "
                                     "(serving windows in mV)")
    with tempfile.TemporaryDirectory() as folder:
        saved = export(run_dir, Path(folder) / "saved_model", preset=preset, weights=weights, which=which,
                       data_root=data_root)
        return export_edge(saved, out, file_format, quantize, representative)


def _training_windows(run_dir, data_root, count: int = 256) -> np.ndarray:
    """``count`` windows of a run's training split (a seeded draw), as the serving signature takes them."""
    from tf_ecg.data.sources import load_source
    from tf_ecg.serving import serving_windows
    from tf_ecg.training.trainer import load_run_recipe

    recipe = load_run_recipe(run_dir)
    splits = load_source(recipe.data, data_root)
    x = splits.train[0]
    rows = np.sort(np.random.default_rng(recipe.training.seed).permutation(len(x))[:count])
    return serving_windows(x[rows], splits.input_spec)


class Predictor:
    """An exported model, loaded once, predicting on recordings in any format or on arrays.

    Attributes:
        input_spec: the model's input contract (rate, window, leads, units, normalisation).
        output_names: the classes or targets, in output order.
        task: ``"multiclass"``, ``"multilabel"``, ``"binary"``, ``"regression"``,
            ``"comparator"`` or ``"generator"``.
    """

    def __init__(self, saved_model: str | Path):
        require_tensorflow()
        from tf_ecg.saved_model import load_exported

        self.path = Path(saved_model)
        self.exported = load_exported(saved_model)
        self.metadata = self.exported.metadata
        self.input_spec = InputSpec(**self.metadata["input_spec"])
        self.output_names = list(self.metadata["output_names"])
        self.task = self.metadata["task"]

    def predict(self, recording: str | Path | np.ndarray, sampling_rate: float | None = None,
                units: str | None = None, batch_size: int = 64, raw: bool = False,
                target_accuracy: float | None = None) -> dict:
        """Outputs per window (or beat) of one recording, and the recording's summary.

        Args:
            recording: a WFDB record, an Apple Watch / Apple Health CSV, a ``.npy`` file, or an
                array: ``(samples, leads)`` or ready windows ``(n, length, leads)``.
            sampling_rate: what a file or array without a header holds (default: the model's).
            units: what a file or array without a header holds (default: the model's, mV;
                the glucose models: µV).
            batch_size: windows per call of the model.
            raw: the network's own probabilities instead of the calibrated (temperature-scaled)
                ones the export serves by default.
            target_accuracy: flag the windows whose confidence is below the level at which
                the model reached this accuracy on its validation split (single-label
                classifiers); ``flagged`` marks them.

        Returns:
            ``outputs`` (per window: probabilities or values), ``positions`` (start sample or
            R peak of each window), ``predicted`` (classes), ``summary`` (votes, majority, mean
            value...), ``warnings`` (e.g. an amplitude implausible in the declared units),
            ``calibration`` (the temperature, or the interval's level and half-widths; says
            so when the export carries none), ``intervals`` (regression: ``lower`` and
            ``upper`` per window, 90 % split-conformal by default), ``flagged``.
        """
        from tf_ecg.predict import predict_file

        with _as_file(recording) as path:
            result = predict_file(self.path, path, sampling_rate, units, batch_size, exported=self.exported,
                                  raw=raw, target_accuracy=target_accuracy)
        if isinstance(recording, np.ndarray):
            result["input"] = f"array of shape {recording.shape}"
        return result

    def explain(self, recording: str | Path | np.ndarray, out: str | Path | None = None, *,
                method: str = "auto", output: str | None = None,
                sampling_rate: float | None = None, units: str | None = None, steps: int = 64) -> dict:
        """Where the model looked: per-sample attributions of one output on each window.

        Args:
            recording: as :meth:`predict` takes it.
            out: a new folder for ``attributions.npy``, ``windows.npy``, ``explain.json`` and
                ``strip_<i>.png`` (the ECG per lead, the attribution as a red band).
            method: ``"integrated_gradients"`` (baseline 0 mV, ``steps`` steps),
                ``"grad_cam"`` (the last convolutional feature map; conv nets) or ``"auto"``:
                the default measured by ``benchmarks/explain.py``, Grad-CAM for classifiers
                and integrated gradients for regressors (and for exports without a feature map).
            output: the class or target explained (default: each window's predicted class,
                or the first target).
            sampling_rate: what a file or array without a header holds.
            units: what a file or array without a header holds.
            steps: integrated gradients' path steps.

        Returns:
            ``attributions`` and ``windows`` (n, length, leads; the input in mV), ``explained``
            (the output name per window), ``outputs``, ``positions``, ``method`` and ``settings``.
        """
        from tf_ecg.explain import explain_recording

        with _as_file(recording) as path:
            return explain_recording(self.path, path, out, method, output, sampling_rate, units, steps,
                                     exported=self.exported)

    def predict_hdf5(self, path: str | Path, out: str | Path, dataset: str = "tracings", sampling_rate: float = 400,
                     units: str = "mV", batch_size: int = 32) -> dict:
        """Scores of every exam of a CODE-format HDF5 file, streamed to ``out`` (``.npy`` or
        ``.csv``); exams with a flat lead are skipped (NaN rows) and listed in the report."""
        from tf_ecg.predict import predict_code_hdf5

        return predict_code_hdf5(self.path, path, out, dataset, sampling_rate, units, batch_size)


@contextmanager
def _as_file(recording: str | Path | np.ndarray):
    """A path for a recording given as a path, or as an array (written to a temporary .npy)."""
    if not isinstance(recording, np.ndarray):
        yield recording
        return
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "array.npy"
        np.save(path, recording)
        yield path


def load(saved_model: str | Path) -> Predictor:
    """Load a SavedModel exported by tf_ecg (:func:`export`, ``tf-ecg export``) for predictions."""
    return Predictor(saved_model)


def presets() -> list[str]:
    """The names of the presets: the published models tf_ecg serves (``tf-ecg presets``)."""
    from tf_ecg.published import preset_names

    return preset_names()


@dataclass
class LoadedPreset:
    """A preset's Keras model with the original's weights, and its contract.

    Attributes:
        model: the Keras model (raw outputs: ``preset.outputs`` says logits, probabilities or values).
        input_spec: what the model takes: rate, window length, leads in order, units, normalisation.
        preset: the whole preset (outputs, task, thresholds, weight source).
    """
    model: object
    input_spec: InputSpec
    preset: object


def load_preset(name: str, weights: str | Path | None = None) -> LoadedPreset:
    """The Keras model of preset ``name`` with an original's weights in it.

    Args:
        name: a preset name (:func:`presets`).
        weights: the original's weight file, or a URL; default: the preset's published file,
            fetched into ``$TF_ECG_CACHE`` (default ``~/.cache/tf_ecg``) and checked by sha256
            (Ribeiro's ``model.hdf5`` from Zenodo, the glucose checkpoints), or the DeepFake
            generator's packaged file.
    """
    require_tensorflow()
    from tf_ecg.building import build_model
    from tf_ecg.published import get_preset
    from tf_ecg.saved_model import preset_weight_file
    from tf_ecg.weights import load_original_weights

    preset = get_preset(name)
    weights = preset_weight_file(name, weights)
    model = load_original_weights(build_model(preset.model, **preset.options), weights)
    return LoadedPreset(model, preset.input_spec, preset)


def synth(n: int, *, seed: int = 0, out: str | Path | None = None, file_format: str = "wfdb",
          batch_size: int = 32, start_id: int = 0, progress: bool = True) -> np.ndarray:
    """DeepFake ECGs from the Keras port of the Pulse2Pulse generator (official weights).

    Args:
        n: how many 10-second ECGs.
        seed: the noise seed (the same seed gives the same ECGs).
        out: also write them here, as WFDB records (``file_format="wfdb"``) or ``.npy`` files.
        batch_size: ECGs per generator call.
        start_id: the number of the first file written.

    Returns:
        ``(n, 5000, 8)`` float32: leads I, II, V1-V6 at 500 Hz, in microvolts.
    """
    require_tensorflow()
    from tf_ecg.deepfake import check_synth_output, generate_ecgs, write_ecgs

    if out is not None:
        check_synth_output(out, n, file_format, start_id)  # before the work
    ecgs = generate_ecgs(n, seed=seed, batch_size=batch_size, progress=progress)
    if out is not None:
        write_ecgs(ecgs, out, file_format, start_id)
    return ecgs


def read_recording(path: str | Path, sampling_rate: float | None = None, units: str | None = None) -> Recording:
    """One recording in millivolts: a WFDB record, an Apple Watch / Apple Health CSV or a
    ``.npy`` (which needs ``sampling_rate``; ``units`` default mV).

    Returns:
        :class:`tf_ecg.data.formats.recording.Recording`: ``signal`` (samples, leads) in mV,
        ``sampling_rate``, ``leads`` (names, or None for a ``.npy``), ``units`` declared.
    """
    return _read_recording(path, sampling_rate, units)
