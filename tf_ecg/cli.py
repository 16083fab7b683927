"""The ``tf-ecg`` command: thin argument parsing over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from tf_ecg.errors import ECGDataError, ImplausibleInputWarning, RecipeError, TfEcgInputError
from tf_ecg.runtime import check_keras_backend, keras_backend_name

QUICKSTART_RECIPES = {"deepfake": "quickstart_deepfake_hr.toml", "mitdb": "quickstart_mitbih.toml"}


def _overrides(args) -> dict:
    """--set SECTION.KEY=VALUE (TOML values) and --epochs, as recipe overrides."""
    from tf_ecg.config import parse_override

    overrides = dict(parse_override(item) for item in getattr(args, "set", None) or [])
    if getattr(args, "epochs", None) is not None:
        overrides["training.epochs"] = args.epochs
    for flag in RUNTIME_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            overrides[f"runtime.{flag}"] = value
    return overrides


RUNTIME_FLAGS = ("strategy", "mixed_precision", "jit_compile", "cpu_replicas", "sync_batch_norm")


def number(kind=int, low=None, high=None, above=None):
    """An argparse type: ``kind`` within [low, high] (``above``: strictly greater), so that an
    impossible value is refused where it enters, naming the option and the allowed range."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or (above is not None and value <= above) or (low is not None and value < low) \
                or (high is not None and value > high):
            bounds = [f"> {above:g}" if above is not None else f">= {low:g}" if low is not None else "",
                      f"<= {high:g}" if high is not None else ""]
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {' and '.join(b for b in bounds if b)}")
        return value
    return parse


COUNT = number(int, low=1)
SEED = number(int, low=0, high=2 ** 32 - 1)
SAMPLING_RATE = number(float, above=0, high=100_000)  # Hz: up to the fastest ECG front ends


def runtime_options(sub) -> None:
    """--strategy, --mixed-precision, --jit-compile, --cpu-replicas, --sync-batch-norm: the
    recipe's [runtime] for this run (they change where it runs, not what it computes)."""
    sub.add_argument("--strategy", choices=("auto", "one-device", "mirrored", "multi-worker"))
    sub.add_argument("--mixed-precision", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    sub.add_argument("--jit-compile", choices=("auto", "on", "off"), help="XLA (default auto: on with a GPU)")
    sub.add_argument("--cpu-replicas", type=number(int, 1, 256), metavar="N",
                     help="split the host CPU into N logical devices (try a multi-device recipe on a laptop)")
    sub.add_argument("--sync-batch-norm", action="store_true", default=None,
                     help="BatchNorm statistics over the global batch, not each replica's")


def _print_report(report: dict) -> None:
    if report["task"] == "regression":
        for name, scores in report["per_target"].items():
            print(f"  {name}: MAE {scores['mae']:.2f} (predicting the mean: "
                  f"{scores['mae_of_mean_predictor']:.2f}), RMSE {scores['rmse']:.2f}, R2 {scores['r2']:.3f}")
            interval = report.get("interval", {}).get("per_target", {}).get(name)
            if interval:
                print(f"  {name}: {report['interval']['level']:.0%} interval +- {interval['half_width']:.2f} "
                      f"covered {interval['coverage']:.1%}")
        return
    print(f"  accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
          f"macro-AUC {report['macro_auc']:.4f}  (n = {report['n']})")
    if "calibration" in report:
        print(f"  calibration: ECE {report['calibration']['ece']:.4f} (15 equal-width bins), "
              f"Brier {report['calibration']['brier']:.4f}")
    for name, scores in report["per_class"].items():
        print(f"  {name:>6}: Se {scores['recall']:.3f}  +P {scores['precision']:.3f}  "
              f"Sp {scores['specificity']:.3f}  F1 {scores['f1']:.3f}  (support {scores['support']})")


def cmd_quickstart(args) -> int:
    from tf_ecg.api import export, train
    from tf_ecg.config import load_recipe, recipes_dir
    from tf_ecg.data.paths import check_output_dir, data_root
    from tf_ecg.runtime import optional_tensorflow
    from tf_ecg.training.trainer import BEST

    started = time.time()
    source = "mitdb" if args.data_root else "deepfake"
    if source == "mitdb" and not (data_root(args.data_root) / "mitdb").is_dir():
        raise ECGDataError(data_root(args.data_root) / "mitdb", "MIT-BIH folder not found under --data-root")
    recipe = load_recipe(recipes_dir() / QUICKSTART_RECIPES[source], _overrides(args))
    run_dir = Path(args.run_dir or f"runs/{recipe.name}")
    out = Path(args.out or f"saved_models/{recipe.name}")
    exports = optional_tensorflow() is not None  # SavedModels and TensorBoard event files are TensorFlow's
    if exports:
        from tf_ecg.saved_model import is_tf_ecg_export

        check_output_dir(out, is_tf_ecg_export, protect=[run_dir], what="SavedModel")  # before the work
    print(f"quickstart: recipe {recipe.path}, run directory {run_dir}")
    result = train(recipe, run_dir, data_root=args.data_root, restart=args.restart)
    print(f"\nTest metrics ({recipe.name}):")
    _print_report(result.test_report)
    if exports:
        print(f"TensorBoard logs: {run_dir / 'logs'}   (tensorboard --logdir {run_dir / 'logs'})")
        print(f"SavedModel: {export(run_dir, out)}")
    else:
        print(f"TensorFlow is not installed: no TensorBoard event files (history: {run_dir / 'history.csv'}) and "
              f"no SavedModel; the trained Keras model is {run_dir / BEST}")
    print(f"quickstart finished in {time.time() - started:.0f} s")
    return 0


def cmd_train(args) -> int:
    from tf_ecg.api import train

    result = train(args.recipe, args.run_dir, data_root=args.data_root, overrides=_overrides(args),
                   minutes=args.minutes, restart=args.restart)
    if result.paused:
        print(f"paused after {args.minutes:g} minutes; the same command resumes the run in {result.run_dir}")
        return 3
    print(f"Test metrics ({result.run_dir.name}, {result.seconds:.0f} s):")
    _print_report(result.test_report)
    print(f"run directory: {result.run_dir}")
    return 0


def cmd_evaluate_files(args) -> int:
    from tf_ecg.api import evaluate
    from tf_ecg.data.paths import check_new_file
    from tf_ecg.evaluation.metrics import strict_json

    if args.out:
        check_new_file(args.out, "report")
    report = evaluate(labels=args.labels, predictions=args.predictions, thresholds=args.thresholds)
    print(f"{args.predictions} against {args.labels} (n = {report['n']}):")
    print(f"  {'class':>6}  precision  recall  specificity     F1    AUC")
    for name, s in report["per_class"].items():
        auc = f"{s['auc']:.4f}" if "auc" in s else "   -  "
        print(f"  {name:>6}  {s['precision']:9.3f}  {s['recall']:6.3f}  {s['specificity']:11.3f}  {s['f1']:.3f}  {auc}")
    if args.out:
        Path(args.out).write_text(strict_json(report))
        print(f"written: {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    if args.labels or args.predictions:
        if not (args.labels and args.predictions):
            raise ECGDataError(None, "--labels and --predictions go together")
        return cmd_evaluate_files(args)
    if not args.run_dir:
        raise ECGDataError(None, "evaluate needs a run directory, or --labels and --predictions")
    if args.out:
        raise ECGDataError(args.out, "--out goes with --labels; a run's report is written into the run directory")
    from tf_ecg.api import evaluate

    report = evaluate(args.run_dir, which=args.which, split=args.split, data_root=args.data_root)
    print(f"{args.split} metrics of {report['model']}:")
    _print_report(report)
    if not report["data_matches_run"]:
        print(f"warning: the {args.split} data rebuilt now differ from the data the run recorded "
              f"(run.json fingerprint): another data root, or changed files?", file=sys.stderr)
    print(f"written: {Path(args.run_dir) / f'evaluate_{args.which}_{args.split}.json'} and plots/")
    return 0


def cmd_export(args) -> int:
    from tf_ecg.api import export

    out = export(args.run_dir, args.out, preset=args.preset, weights=args.weights, which=args.which,
                 data_root=args.data_root, file_format=args.format, quantize=args.quantize,
                 calibration_data=args.calibration_data)
    print(f"{'SavedModel' if args.format == 'saved_model' else args.format} written to {out}")
    return 0


def cmd_predict(args) -> int:
    from tf_ecg.api import load
    from tf_ecg.data.paths import check_new_file
    from tf_ecg.evaluation.metrics import strict_json
    from tf_ecg.predict import HDF5_SUFFIXES

    if Path(args.input).suffix in HDF5_SUFFIXES:
        if not args.out:
            raise ECGDataError(args.input, "an HDF5 file of exams needs --out scores.npy or scores.csv")
        summary = load(args.saved_model).predict_hdf5(args.input, args.out, args.dataset,
                                                      sampling_rate=args.sampling_rate or 400,
                                                      units=args.units or "mV", batch_size=args.batch_size)
        print(json.dumps(summary, indent=2))
        return 0
    if args.out:
        check_new_file(args.out, "predictions")
        if Path(args.out).suffix != ".json":
            raise ECGDataError(args.out, "the outputs of one recording are written to a .json file")
    result = load(args.saved_model).predict(args.input, args.sampling_rate, args.units, args.batch_size,
                                            raw=args.raw, target_accuracy=args.target_accuracy)
    if args.out:
        Path(args.out).write_text(strict_json(result))
    print(json.dumps({"input": result["input"], "windows": len(result["outputs"]), "summary": result["summary"],
                      **({"calibration": result["calibration"]} if "calibration" in result else {})}, indent=2))
    return 0


def cmd_explain(args) -> int:
    from collections import Counter

    from tf_ecg.api import load

    result = load(args.saved_model).explain(args.input, args.out, method=args.method.replace("-", "_"),
                                            output=args.output, sampling_rate=args.sampling_rate, units=args.units,
                                            steps=args.steps)
    print(f"{len(result['windows'])} windows explained ({result['method'].replace('_', ' ')}); explained: "
          f"{dict(Counter(result['explained']))}")
    print(f"written: {args.out} (attributions.npy, windows.npy, explain.json, strip_*.png)")
    return 0


def cmd_presets(args) -> int:
    from tf_ecg.api import presets
    from tf_ecg.published import get_preset

    if args.name:
        print(json.dumps(get_preset(args.name).to_dict(), indent=2))
        return 0
    for preset in map(get_preset, presets()):
        spec = preset.input_spec
        leads = ",".join(spec.display_leads())
        print(f"{preset.name:32} {preset.model:24} {spec.sampling_rate:g} Hz x {spec.length}, {leads}, "
              f"{spec.units} -> {preset.task}: {', '.join(preset.output_names)}")
    print("\ntf-ecg presets NAME: the whole preset; docs/input_contracts.md: input contracts")
    return 0


def cmd_download(args) -> int:
    from tf_ecg.data.download import PHYSIONET_URL, download_database

    target = download_database(args.database, args.data_root, base_url=args.base_url or PHYSIONET_URL,
                               limit=args.limit)
    print(f"{args.database} is in {target}")
    return 0


def cmd_heartbeats(args) -> int:
    from tf_ecg.data.heartbeats import PUBLISHED_COUNTS, build_heartbeats, heartbeat_files, write_kaggle_csv
    from tf_ecg.data.paths import dataset_dir

    started = time.perf_counter()
    train, test = build_heartbeats(dataset_dir("mitdb", args.data_root), args.records, test_fraction=0.2,
                                   seed=args.seed)
    out = Path(args.out) if args.out else dataset_dir("heartbeats", args.data_root, must_exist=False)
    for path, part in zip(heartbeat_files(out), (train, test)):
        write_kaggle_csv(path, part)
    summary = {"out": str(out), "seconds": round(time.perf_counter() - started, 1),
               "counts": {"train": train.counts(), "test": test.counts()}, "published": PUBLISHED_COUNTS}
    print(json.dumps(summary, indent=2))
    return 0


def cmd_verify(args) -> int:
    from tf_ecg.data.formats.shards import verify_shards

    report = verify_shards(args.directory)
    print(f"{report['directory']}: all {report['shards']} shards ({report['bytes'] / 2 ** 20:.1f} MiB) "
          f"match manifest.json")
    return 0


def cmd_shards(args) -> int:
    from tf_ecg.config import parse_override
    from tf_ecg.data.sources.shards import shardable_sources, write_source_shards

    if args.source not in shardable_sources():
        raise RecipeError(None, f"data shards {args.source!r}: unknown source; known: {shardable_sources()}")
    options = {}
    for item in args.set or []:
        key, value = parse_override(item)
        if not key.startswith("data."):
            raise RecipeError(None, f"--set {item!r}: data shards takes source options, data.KEY=VALUE")
        options[key[len("data."):]] = value
    started = time.perf_counter()
    out = write_source_shards(args.source, args.out, args.data_root, options, args.shard_mb)
    manifest = json.loads((out / "manifest.json").read_text())
    print(json.dumps({"out": str(out), "seconds": round(time.perf_counter() - started, 1),
                      "examples": {s: c["examples"] for s, c in manifest["splits"].items()},
                      "shards": {s: len(c["shards"]) for s, c in manifest["splits"].items()},
                      **({"skipped": manifest["skipped"]} if "skipped" in manifest else {})}, indent=2))
    return 0


def cmd_leave_one_out(args) -> int:
    from tf_ecg.api import leave_one_out
    from tf_ecg.config import parse_override

    overrides = dict(parse_override(item) for item in args.set or [])
    flags = {"epochs": args.epochs, "fine_tune_epochs": args.fine_tune_epochs,
             "transfer": False if args.no_transfer else None}
    overrides.update({f"leave_one_out.{k}": v for k, v in flags.items() if v is not None})
    report = leave_one_out(args.recipe, args.out, data_root=args.data_root, records=args.records, pool=args.pool,
                           overrides=overrides)
    for variant, scores in report["variants"].items():
        aami = scores["pooled_aami"]["se_ppv"]
        print(f"{variant}: accuracy {scores['pooled']['accuracy']:.4f}, macro-F1 {scores['pooled']['macro_f1']:.3f}, "
              f"SVEB Se/+P {aami['S']['Se']:.3f}/{aami['S']['+P']:.3f}, VEB Se/+P {aami['V']['Se']:.3f}/{aami['V']['+P']:.3f}")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_synth(args) -> int:
    from tf_ecg.api import synth

    synth(args.n, seed=args.seed, out=args.out, file_format=args.format, batch_size=args.batch_size,
          start_id=args.start_id)
    print(f"{args.n} DeepFake ECGs (leads I, II, V1-V6, 500 Hz, uV) written to {args.out}")
    return 0


def cmd_env(args) -> int:
    """Versions, devices, and what a recipe's default runtime would run on (TensorFlow's
    wheel, kernels and logical devices where it is installed)."""
    import os

    import keras

    from tf_ecg.config import RuntimeConfig
    from tf_ecg.runtime import accelerators, backend_devices, cpu_info, cpu_kernels, optional_tensorflow, versions
    from tf_ecg.training.distribution import Runtime, make_strategy, strategy_devices

    config = RuntimeConfig(strategy=args.strategy or "auto", cpu_replicas=args.cpu_replicas or 1)
    runtime = Runtime(make_strategy(config), config)
    cpu, tf = cpu_info(), optional_tensorflow()
    on_tensorflow = keras.backend.backend() == "tensorflow"
    tensorflow = {} if tf is None else {
        "tensorflow_wheel": "GPU" if tf.test.is_built_with_cuda() else "CPU only", "cpu_kernels": cpu_kernels(),
        "gpus": accelerators(), "logical_devices": [d.name for d in tf.config.list_logical_devices()]}
    print(json.dumps({
        **versions(),
        "cpu": {k: cpu.get(k) for k in ("model_name", "family", "model", "usable_cores")},
        "backend_devices": backend_devices(),
        **tensorflow,
        "runtime": {"strategy": runtime.strategy_name, "replicas": runtime.replicas,
                    "devices": strategy_devices(runtime.strategy) if on_tensorflow else backend_devices()[:1],
                    "jit_compile_auto": "on" if accelerators() else "off (CPU only)",
                    "mixed_precision_hint": "mixed_float16 (compute capability >= 7.0) or mixed_bfloat16 (>= 8.0)"
                                            if accelerators() else "float32 (mixed precision is slow on CPUs)",
                    "TF_CONFIG": "set (multi-worker)" if os.environ.get("TF_CONFIG") else "not set"},
    }, indent=2))
    return 0


def cmd_models(args) -> int:
    from tf_ecg.registry import model_names

    print("\n".join(model_names()))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tf-ecg", description=__doc__)
    verbs = root.add_subparsers(dest="verb", required=True)

    def add(name, function, help_text):
        sub = verbs.add_parser(name, help=help_text)
        sub.set_defaults(function=function)
        return sub

    def data_root_option(sub):
        sub.add_argument("--data-root", help="folder holding mitdb/, ptbxl/, ... "
                                             "(default: $TF_ECG_DATA_ROOT, else ~/tf_ecg_data)")

    quick = add("quickstart", cmd_quickstart, "train, export and score a model end to end in minutes")
    quick.add_argument("--data-root", help="train on the real MIT-BIH records under this folder "
                                           "instead of DeepFake ECGs")
    quick.add_argument("--run-dir")
    quick.add_argument("--out", help="SavedModel folder (default saved_models/<recipe name>)")
    quick.add_argument("--epochs", type=COUNT)
    quick.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a recipe value (TOML)")
    quick.add_argument("--restart", action="store_true", help="replace an earlier quickstart run in --run-dir")
    runtime_options(quick)

    train_parser = add("train", cmd_train, "run a recipe file (models/*.toml)")
    train_parser.add_argument("recipe")
    data_root_option(train_parser)
    train_parser.add_argument("--run-dir")
    train_parser.add_argument("--epochs", type=COUNT)
    train_parser.add_argument("--minutes", type=number(float, low=0), help="start no epoch after this many minutes; the run "
                              "pauses (exit status 3) and the same command resumes it")
    train_parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                              help="override a recipe value; VALUE is TOML: 3, 1e-3, true, [1, 2], {a = 1}, \"text\"")
    train_parser.add_argument("--restart", action="store_true",
                              help="replace the run in --run-dir (default: resume it if unfinished; "
                                   "refuse if it was made by another recipe)")
    runtime_options(train_parser)

    evaluate = add("evaluate", cmd_evaluate, "score a trained run (JSON report and plots), or prediction files")
    evaluate.add_argument("run_dir", nargs="?")
    evaluate.add_argument("--labels", help="reference labels CSV (e.g. code-test/annotations/gold_standard.csv)")
    evaluate.add_argument("--predictions", help="0/1 CSV (e.g. dnn.csv) or sigmoid scores .npy")
    evaluate.add_argument("--thresholds", help="for .npy scores: 'table2' (default), one value, or one per class")
    evaluate.add_argument("--out", help="with --labels: write the JSON report here")
    data_root_option(evaluate)
    evaluate.add_argument("--which", choices=("best", "final"), default="best")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test")

    export = add("export", cmd_export, "export a trained run, or an original's weight file (--preset), "
                                       "as a SavedModel")
    export.add_argument("run_dir", nargs="?")
    export.add_argument("--preset", help="a preset name (tf-ecg presets)")
    export.add_argument("--weights", help="with --preset: the original's weight file (.hdf5, .pth, .pt) or its URL; "
                        "default: the preset's published file, fetched into $TF_ECG_CACHE and checked by sha256")
    export.add_argument("--out", help="SavedModel folder (default saved_models/<run or preset name>)")
    export.add_argument("--which", choices=("best", "final"), default="best")
    export.add_argument("--format", choices=("saved_model", "tflite", "onnx"), default="saved_model",
                        help="a SavedModel folder, a LiteRT .tflite or an ONNX file (the preprocessing goes along)")
    export.add_argument("--quantize", choices=("none", "dynamic", "int8"), default="none",
                        help="LiteRT: int8 weights (dynamic) or weights and activations (int8, calibrated)")
    export.add_argument("--calibration-data", metavar="FILE",
                        help="a preset's SavedModel: labelled windows to calibrate its probabilities on (.npz: windows "
                             "(n, length, leads) in mV, labels); int8: serving windows (.npy; default for a run: its "
                             "training split)")
    data_root_option(export)

    explain = add("explain", cmd_explain, "where an exported model looked: per-sample attributions of each window, "
                                          "saved as arrays and ECG strips")
    explain.add_argument("saved_model")
    explain.add_argument("input", help="a recording (WFDB, Apple Watch CSV, .npy), as predict takes it")
    explain.add_argument("--out", required=True, help="new folder for attributions.npy, explain.json, strip_*.png")
    explain.add_argument("--method", choices=("auto", "integrated-gradients", "grad-cam"), default="auto",
                         help="auto (default): Grad-CAM for classifiers, integrated gradients for regressors and "
                              "models without conv layers (chosen by benchmarks/explain.py)")
    explain.add_argument("--output", metavar="CLASS", help="the class or target explained (default: the predicted one)")
    explain.add_argument("--steps", type=number(int, 2, 1024), default=64, help="integrated gradients' steps")
    explain.add_argument("--sampling-rate", type=SAMPLING_RATE, help="Hz, for a file that does not say it")
    explain.add_argument("--units", help="amplitude units of a file that does not say them (V, mV, uV)")

    predict = add("predict", cmd_predict, "run an exported model on a WFDB record, Apple Watch CSV, .npy, "
                                         "or a CODE HDF5 file of exams")
    predict.add_argument("saved_model")
    predict.add_argument("input")
    predict.add_argument("--out", help="one recording: all per-window outputs to a .json file; "
                                       "an HDF5 file: scores to a .npy or .csv file")
    predict.add_argument("--sampling-rate", type=SAMPLING_RATE,
                         help="sampling rate of a file that does not say it (.npy, values-only CSV, HDF5: 400)")
    predict.add_argument("--units", help="amplitude units of a file that does not say them (V, mV, uV): "
                                         "default mV (the glucose models: uV)")
    predict.add_argument("--dataset", default="tracings", help="HDF5 dataset of exams (default tracings)")
    predict.add_argument("--batch-size", type=COUNT, default=32)
    predict.add_argument("--raw", action="store_true",
                         help="the network's own probabilities, not the calibrated ones the export serves")
    predict.add_argument("--target-accuracy", type=number(float, above=0, high=1), metavar="A",
                         help="flag windows less confident than where validation accuracy reached A (e.g. 0.99)")

    presets = add("presets", cmd_presets, "list the presets (published models and their input contracts)")
    presets.add_argument("name", nargs="?")

    data = add("data", None, "data set commands")
    data_verbs = data.add_subparsers(dest="data_verb", required=True)
    download = data_verbs.add_parser("download", help="download a PhysioNet data set (resumable)")
    download.set_defaults(function=cmd_download)
    download.add_argument("database", choices=("mitdb", "ptb-xl"))
    data_root_option(download)
    download.add_argument("--base-url", help="PhysioNet mirror (default https://physionet.org/files/)")
    download.add_argument("--limit", type=COUNT, help="only the first N records")

    heartbeats = data_verbs.add_parser("heartbeats", help="rebuild the Kaggle MIT-BIH heartbeat CSVs "
                                                          "(187 samples at 125 Hz) from the raw records")
    heartbeats.set_defaults(function=cmd_heartbeats)
    data_root_option(heartbeats)
    heartbeats.add_argument("--out", help="output folder (default <data root>/heartbeats)")
    heartbeats.add_argument("--seed", type=SEED, default=0, help="seed of the stratified 80/20 split")
    heartbeats.add_argument("--records", nargs="+", help="only these records (default: all present)")

    shards = data_verbs.add_parser("shards", help="convert a data set into TFRecord shards plus a manifest, "
                                                  "for training on data larger than memory ([data] source = 'shards')")
    shards.set_defaults(function=cmd_shards)
    shards.add_argument("source", help="code15 (exams.csv + exams_part*.hdf5), or a recipe data source such "
                                       "as ptbxl_code_format or mitbih_beats (an unknown name lists them all)")
    data_root_option(shards)
    shards.add_argument("--out", help="output folder, written once (default <data root>/shards/<source>)")
    shards.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a source option, as in a recipe's [data] (TOML value), e.g. --set data.val_fraction=0.02")
    shards.add_argument("--shard-mb", type=number(float, above=0), default=150, help="about this many MB per shard file")

    verify = data_verbs.add_parser("verify", help="check every shard of a shard folder against its manifest "
                                                  "(sizes and sha256)")
    verify.set_defaults(function=cmd_verify)
    verify.add_argument("directory", help="a folder written by tf-ecg data shards")

    loo = add("leave-one-out", cmd_leave_one_out, "MIT-BIH leave-one-patient-out with loo_conv1d, with and "
                                                  "without patient transfer (resumable per fold)")
    loo.add_argument("--out", required=True, help="folder for folds, TensorBoard logs and report.json")
    data_root_option(loo)
    loo.add_argument("--recipe", default="loo_conv1d_leave_one_out",
                     help="recipe file or packaged recipe name (default loo_conv1d_leave_one_out)")
    loo.add_argument("--set", action="append", metavar="leave_one_out.KEY=VALUE")
    loo.add_argument("--records", nargs="+", help="only these held-out records (default: all)")
    loo.add_argument("--pool", nargs="+", help="records that make up the data set (default: all present)")
    loo.add_argument("--epochs", type=COUNT)
    loo.add_argument("--fine-tune-epochs", type=number(int, low=0))
    loo.add_argument("--no-transfer", action="store_true", help="baseline only")

    synth = add("synth", cmd_synth, "generate 10-s 8-lead DeepFake ECGs with the Pulse2Pulse port")
    synth.add_argument("--n", type=COUNT, required=True, help="number of ECGs")
    synth.add_argument("--seed", type=SEED, default=0)
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--format", choices=("wfdb", "npy"), default="wfdb")
    synth.add_argument("--batch-size", type=COUNT, default=32)
    synth.add_argument("--start-id", type=number(int, low=0), default=0, help="number of the first record")

    add("models", cmd_models, "list the registered model names")
    env = add("env", cmd_env, "versions, devices and the runtime a recipe would use here")
    env.add_argument("--strategy", choices=("auto", "one-device", "mirrored", "multi-worker"))
    env.add_argument("--cpu-replicas", type=number(int, 1, 256), metavar="N")
    root.add_argument("--debug", action="store_true", help="print the traceback of every error")
    return root


LIGHT_VERBS = ("presets", "models")  # answer at once: no TensorFlow
# what runs on JAX or PyTorch without TensorFlow installed; the other verbs read or write
# SavedModels, shards or TensorBoard event files, which are TensorFlow's
WITHOUT_TENSORFLOW = ("quickstart", "train", "env")


def _start_tensorflow(quiet: bool, required: bool) -> None:
    """Import TensorFlow, with the lines its C++ core writes to standard error while it loads
    (absl's pre-initialisation notice, the oneDNN note) silenced unless ``--debug``: they come
    before TF_CPP_MIN_LOG_LEVEL applies, so only the file descriptor can hold them back.
    Not ``required`` (a verb of ``WITHOUT_TENSORFLOW`` on JAX or PyTorch): started where it is
    installed (it feeds them tf.data), else left out."""
    from tf_ecg import require_tensorflow
    from tf_ecg.runtime import optional_tensorflow

    start = require_tensorflow if required else optional_tensorflow
    if not quiet:
        start()
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        start()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings about the input as one line, as errors are; others as Python shows them."""
    if issubclass(category, ImplausibleInputWarning):
        print(f"tf-ecg: warning: {message}", file=sys.stderr)
    else:
        warnings._showwarning_orig(message, category, filename, lineno, file, line)


def main(argv=None) -> int:
    """Input errors (a bad file, an unknown name, an invalid recipe, an output path we must
    not touch) are one line and exit 2; anything else is a bug in tf_ecg and keeps its
    traceback (exit 1). ``--debug`` shows the traceback of input errors too."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    try:
        args = parser().parse_args([a for a in argv if a != "--debug"])
    except SystemExit as stop:  # --help, or a refused option (argparse printed why)
        return int(stop.code or 0)
    try:
        if args.verb not in LIGHT_VERBS:
            check_keras_backend()
            _start_tensorflow(quiet=not debug, required=keras_backend_name() == "tensorflow"
                              or args.verb not in WITHOUT_TENSORFLOW)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.function(args)
    except TfEcgInputError as error:
        if debug:
            raise
        print(f"tf-ecg: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as missing:  # a verb that needs TensorFlow, on JAX or PyTorch without it
        if debug or missing.name != "tensorflow" or missing.msg.startswith("No module named"):
            raise
        print(f"tf-ecg: error: {args.verb} needs TensorFlow on every Keras backend (training does not): {missing.msg}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
