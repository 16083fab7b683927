"""Systems 3 and 4 on the 48 MIT-BIH records. One part per call, one results file each:

  builder     wall time of `tf-ecg data heartbeats` (all records, CSVs written) and its class
              counts next to the published Kaggle files         -> results/mitbih_heartbeats_builder.json
  throughput  training beats/s of loo_conv1d (batch 32) and mitbih_resnext (batch 128, AdaBound,
              focal loss), inference beats/s of the ResNeXt     -> results/mitbih_throughput.json
  loo         the leave-one-patient-out protocol, both variants, pooled AAMI Se/+P next to the
              published references (resumable: --runs-dir in one checkout, --store DIR across
              sessions: finished folds are kept there; --minutes M starts no fold after M
              minutes and reports the folds done so far)       -> results/mitbih_loo.json
  resnext     models/mitbih_resnext.toml and its peers, the plain Conv1D (models/kaggle_conv1d_baseline.toml)
              and Kachuee et al.'s residual CNN (models/kachuee_residual_cnn.toml), on the same
              splits of the rebuilt Kaggle heartbeats, each until validation plateaus (resumable:
              --store DIR keeps the runs, --minutes M starts no epoch after M minutes, --networks
              picks the ones this call may train; --mixed-precision for the ResNeXt); test scored
              once at the end, test probabilities kept        -> results/mitbih_resnext.json

Usage: python benchmarks/mitbih.py PART --data-root ../shared/data [--epochs N] [--minutes M]
                                   [--store DIR] [--result NAME] [--patience P] [--mixed-precision P]
                                   [--networks NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import RESULTS as RESULTS_DIR, earlier_result, finished_elsewhere, run_progress, write_result  # noqa: E402
from tf_ecg import cli  # noqa: E402
from tf_ecg.data import heartbeats, mitbih  # noqa: E402
from tf_ecg.data.paths import dataset_dir  # noqa: E402
from tf_ecg.registry import build_model  # noqa: E402
from tf_ecg.training.leave_one_out import LeaveOneOutConfig, pooled_report, run_leave_one_out  # noqa: E402
from tf_ecg.config import load_recipe  # noqa: E402
from tf_ecg.data.sources import load_source  # noqa: E402
from tf_ecg.runtime import machine_info  # noqa: E402
from tf_ecg.training.compiling import compile_model  # noqa: E402
from tf_ecg.training.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Published MIT-BIH results, SVEB and VEB Se / +P in % (spec 4-mitbih-loo-conv1d.md, section f).
LOO_REFERENCES = {
    "de Chazal et al. 2004 (inter-patient DS1 -> DS2)": {"SVEB": [75.9, 38.5], "VEB": [77.7, 81.9]},
    "Kiranyaz et al. 2016 (patient-specific, first 5 min)": {"SVEB": [64.6, 62.1], "VEB": [95.0, 89.5]},
    "de Chazal & Reilly 2006 (patient-adaptable)": {"SVEB": [87.7, 47.0], "VEB": [94.3, 96.2]},
}
RESNEXT_PEERS = {"CVxTz Conv1D baseline (Kaggle test file)": {"accuracy": 0.985, "macro_f1": 0.915}}


def builder(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        assert cli.main(["data", "heartbeats", "--data-root", args.data_root, "--out", tmp]) == 0
        seconds = time.perf_counter() - started
        train = heartbeats.read_kaggle_csv(Path(tmp) / heartbeats.TRAIN_FILE)
        test = heartbeats.read_kaggle_csv(Path(tmp) / heartbeats.TEST_FILE)
    return {"records": 48, "wall_seconds_with_csv_writing": round(seconds, 1),
            "rebuilt": {"train": train.counts(), "test": test.counts(),
                        "rows": [len(train.labels), len(test.labels)]},
            "published": {**heartbeats.PUBLISHED_COUNTS, "rows": [87_554, 21_892]}}


def _train_rate(model, x, y, batch_size: int, steps: int) -> float:
    model.train_on_batch(x[:batch_size], y[:batch_size])
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x[:batch_size], y[:batch_size])
    return steps * batch_size / (time.perf_counter() - started)


def throughput(args) -> dict:
    rng = np.random.default_rng(0)
    loo = build_model("loo_conv1d", num_classes=14)
    loo.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = rng.uniform(size=(32, 160, 2)).astype("float32"), rng.integers(0, 14, 32)
    results = {"loo_conv1d": {"batch_size": 32, "train_beats_per_s": round(_train_rate(loo, x, y, 32, 200), 1)}}
    recipe = load_recipe(REPO / "models" / "mitbih_resnext.toml")
    resnext = compile_model(recipe, 5)
    x, y = rng.uniform(size=(128, 187, 1)).astype("float32"), rng.integers(0, 5, 128)
    results["mitbih_resnext"] = {"batch_size": 128, "train_beats_per_s": round(_train_rate(resnext, x, y, 128, 3), 1)}
    predict = tf.function(lambda batch: resnext(batch, training=False))  # what a SavedModel serves
    for batch_size in (32, 128):
        predict(x[:batch_size])
        started = time.perf_counter()
        for _ in range(3):
            np.asarray(predict(x[:batch_size]))
        rate = 3 * batch_size / (time.perf_counter() - started)
        results["mitbih_resnext"][f"inference_beats_per_s_batch_{batch_size}"] = round(rate, 1)
    return results


def _store_fold(store: Path):
    """Keep a finished fold's predictions (small integers, compressed) in ``store``."""
    def keep(path: Path) -> None:
        with np.load(path) as fold:
            arrays = {k: fold[k].astype(np.int16) if fold[k].dtype.kind == "i" else fold[k] for k in fold.files}
        store.mkdir(parents=True, exist_ok=True)
        staging = store / f"{path.stem}.partial.npz"
        np.savez_compressed(staging, **arrays)
        staging.replace(store / path.name)
    return keep


class _TimeSpent(Exception):
    """loo --minutes: the time is up; stop after the fold just finished."""


def loo(args) -> dict:
    """With ``--store DIR``, every finished fold is kept in DIR (committed with the results)
    and a later call, in another session or checkout, starts from the folds found there."""
    config = LeaveOneOutConfig(epochs=args.epochs or LeaveOneOutConfig.epochs)
    started = time.time()
    out_dir = Path(args.runs_dir) / f"loo-e{config.epochs}"
    on_fold = None
    if args.store:
        store = Path(args.store)
        out_dir.mkdir(parents=True, exist_ok=True)
        stored = store / "config.json"
        if stored.exists() and json.loads(stored.read_text()) != asdict(config):
            raise SystemExit(f"{store} holds folds of another configuration")
        for fold in store.glob("fold_*.npz"):
            if not (out_dir / fold.name).exists():
                shutil.copy(fold, out_dir / fold.name)
        if not (out_dir / "config.json").exists() and any(out_dir.glob("fold_*.npz")):
            (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
        store.mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps(asdict(config), indent=2))
        on_fold = _store_fold(store)
    mitdb = dataset_dir("mitdb", args.data_root)
    deadline = started + 60 * args.minutes if args.minutes else None

    def after_fold(path: Path) -> None:
        if on_fold is not None:
            on_fold(path)
        if deadline is not None and time.time() > deadline:
            raise _TimeSpent

    try:
        report = run_leave_one_out(mitdb, out_dir, config=config, on_fold=after_fold)
        folds_total = report["folds"]
    except _TimeSpent:  # the folds done so far, pooled; the next call resumes from them
        beats, _, symbols = mitbih.leave_one_out_beats(mitdb)
        folds_total = len(set(beats.records))
        done = sorted(path.name[len("fold_"):-len(".npz")] for path in out_dir.glob("fold_*.npz")
                      if not path.name.endswith(".partial.npz"))
        report = pooled_report(out_dir, done, symbols)
    variants = {}
    for name, scores in report["variants"].items():
        aami = scores["pooled_aami"]["se_ppv"]
        variants[name] = {
            "beats": scores["pooled"]["n"], "accuracy": round(scores["pooled"]["accuracy"], 4),
            "macro_f1_symbols": round(scores["pooled"]["macro_f1"], 3),
            "aami_accuracy": round(scores["pooled_aami"]["accuracy"], 4),
            "aami_macro_f1": round(scores["pooled_aami"]["macro_f1"], 3),
            "SVEB_Se_PPV_percent": [round(100 * aami["S"]["Se"], 1), round(100 * aami["S"]["+P"], 1)],
            "VEB_Se_PPV_percent": [round(100 * aami["V"]["Se"], 1), round(100 * aami["V"]["+P"], 1)],
            "aami_confusion_matrix": scores["pooled_aami"]["confusion_matrix"],
            "mean_fold_accuracy": round(scores["mean_fold_accuracy"], 4)}
    return {"config": config.__dict__, "folds": report["folds"], "folds_total": folds_total,
            "complete": report["folds"] == folds_total, "training_seconds": round(report["seconds"]),
            "wall_seconds_this_call": round(time.time() - started),
            "variants": variants, "published_references": LOO_REFERENCES,
            "note": "baseline = all beats of the held-out record; baseline_last20 and transfer = its last 20 minutes"}


KAGGLE_NETWORKS = {  # results key -> packaged recipe; the peers first: they take minutes, the ResNeXt days
    "conv1d_peer": "kaggle_conv1d_baseline.toml",
    "kachuee_cnn": "kachuee_residual_cnn.toml",
    "resnext": "mitbih_resnext.toml",
}
PEERS = ("conv1d_peer", "kachuee_cnn")
# spec 3 (f): the Wilson interval of the peer's 98.5 % on 21,892 beats, and its macro-F1 rounded down
RESNEXT_TARGETS = {"accuracy": 0.983, "macro_f1": 0.90}


def _kaggle_run_summary(run_dir: Path, key: str) -> dict:
    """What a (paused or finished) run directory shows: epochs, validation curve, test report;
    a finished run's test probabilities go to results/ as float16, in test order."""
    summary = run_progress(run_dir, ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                                     "learning_rate"))
    if summary["history"]:
        best = max(summary["history"], key=lambda row: row["val_accuracy"])  # the first of equals, as idxmax
        summary["best_epoch"] = {"epoch": best["epoch"], "val_accuracy": best["val_accuracy"],
                                 "val_macro_f1": round(best.get("val_macro_f1", float("nan")), 4)}
    if summary["status"] == "finished":
        report = json.loads((run_dir / "test_metrics.json").read_text())
        with np.load(run_dir / "test_outputs.npz") as test:
            probabilities, labels = test["outputs"].astype(np.float16), test["labels"].astype(np.int64)
        predictions = RESULTS_DIR / f"mitbih_kaggle_test_probabilities_{key}.npy"
        np.save(predictions, probabilities)
        summary["test"] = {
            "n": report["n"], "accuracy": round(report["accuracy"], 4), "macro_f1": round(report["macro_f1"], 4),
            "macro_auc": round(report["macro_auc"], 4),
            "per_class": {k: {"Se": round(v["recall"], 4), "+P": round(v["precision"], 4), "F1": round(v["f1"], 4),
                              "support": v["support"]} for k, v in report["per_class"].items()},
            "confusion_matrix_rows_true": report["confusion_matrix"],
            "probabilities": f"results/{predictions.name} (float16, test order, classes {list(report['per_class'])})",
            "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
            "labels_sha256_of": "the test labels as int64, in test order"}
    return summary


def resnext(args) -> dict:
    """System 3 and its peers on the same splits of the rebuilt Kaggle heartbeats, each trained
    until validation accuracy plateaus (the ResNeXt: early stopping after --patience epochs
    without a gain, in place of the recipe's 200 epochs). Resumable: the runs live in
    --store (default runs/mitbih_benchmark/kaggle); --minutes M starts no epoch after M
    minutes and reports the epochs done; the same command continues. The test set is
    scored once per network, when its training has ended."""
    deadline = time.time() + 60 * args.minutes if args.minutes is not None else None
    store = Path(args.store or Path(args.runs_dir) / "kaggle")
    earlier = earlier_result(args.result or "mitbih_resnext")
    calls = earlier.get("results", {}).get("calls", [])
    splits, networks = None, {}
    for key, recipe_file in KAGGLE_NETWORKS.items():
        overrides = {}
        if key == "resnext":
            overrides["training.early_stopping"] = {"patience": args.patience, "mode": "max"}
            if args.mixed_precision:
                overrides["runtime.mixed_precision"] = args.mixed_precision
        recipe = load_recipe(REPO / "models" / recipe_file, overrides)
        run_dir = store / recipe.name
        kept = finished_elsewhere(earlier, "networks", key, run_dir)
        if kept:
            networks[key] = kept
            continue
        finished = (run_dir / "test_metrics.json").is_file()
        minutes = None if deadline is None else (deadline - time.time()) / 60
        if key in args.networks and not finished and (minutes is None or minutes > 0):
            splits = splits or load_source(recipe.data, args.data_root)  # every recipe: the same data section
            train(recipe, run_dir, splits=splits, minutes=minutes)
        if (run_dir / "run.json").is_file():
            networks[key] = _kaggle_run_summary(run_dir, key)
        elif kept := finished_elsewhere(earlier, "networks", key, run_dir, unfinished=True):
            networks[key] = kept  # not trained on this call: left as it stands in another machine's store
    calls.append({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "minutes": args.minutes,
                  "cpu": machine_info()["cpu"]["model_name"], "epochs_after": {k: v["epochs_run"] for k, v in networks.items()}})
    table = {key: {"parameters": net["parameters"], "epochs": net["epochs_run"], "status": net["status"],
                   **({"accuracy": net["test"]["accuracy"], "macro_f1": net["test"]["macro_f1"]} if "test" in net else {})}
             for key, net in networks.items()}
    for peer in PEERS:
        if "accuracy" in table.get("resnext", {}) and "accuracy" in table.get(peer, {}):
            table[f"ratio_resnext_to_{peer}"] = {m: round(table["resnext"][m] / table[peer][m], 4)
                                                 for m in ("accuracy", "macro_f1")}
    if "accuracy" in table.get("resnext", {}):
        table["resnext_meets_targets"] = {m: table["resnext"][m] >= t for m, t in RESNEXT_TARGETS.items()}
    earlier_data = earlier.get("results", {}).get("data")
    return {"data": splits.info if splits else earlier_data, "store": str(store), "table": table, "targets": RESNEXT_TARGETS,
            "networks": networks, "published_peers": RESNEXT_PEERS, "calls": calls}


PARTS = {"builder": builder, "throughput": throughput, "loo": loo, "resnext": resnext}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--epochs", type=int, help="loo: epochs per fold (recipe: 10)")
    parser.add_argument("--minutes", type=float,
                        help="resnext: start no epoch after this; loo: start no fold after this")
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "mitbih_benchmark"))
    parser.add_argument("--store", help="loo: keep finished folds here and resume from them (any session); "
                                        "resnext: the runs' folder (checkpoints: keep it outside the clone)")
    parser.add_argument("--patience", type=int, default=6,
                        help="resnext: epochs without a validation-accuracy gain before it stops")
    parser.add_argument("--mixed-precision", choices=("float32", "mixed_bfloat16"),
                        help="resnext: the ResNeXt's runtime precision (default: the recipe's float32)")
    parser.add_argument("--networks", nargs="+", choices=list(KAGGLE_NETWORKS), default=list(KAGGLE_NETWORKS),
                        help="resnext: the networks this call may train (the others are reported as they stand)")
    parser.add_argument("--result", help="results file name (default mitbih_<part>)")
    args = parser.parse_args()
    names = {"builder": "mitbih_heartbeats_builder", "throughput": "mitbih_throughput", "loo": "mitbih_loo",
             "resnext": "mitbih_resnext"}
    write_result(args.result or names[args.part], PARTS[args.part](args))


if __name__ == "__main__":
    main()
