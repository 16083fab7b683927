"""e18 Table 4: DeepFake regression -> PTB-XL classification. Every finished regressor of
benchmarks/deepfake_table1.py (its --store) is transferred with scheme B
(models/inception1d_transfer_b.toml: the regressor's weights, a fresh 5-class output, the first
inception block frozen) to the five superclasses of the PTB-XL subset under ../shared/data,
beside the baseline (models/inception1d_superclass.toml, random initialisation), on the same
strat_fold 1-8 / 9 / 10 splits, --seeds times each (seeds 42, 43, ...: the recipes' 42 first).

Reported per model: test macro AUC and accuracy per seed, mean +- sd over seeds; per transfer,
the paired difference to the baseline (seed by seed) with a bootstrap 95 % interval over the
test records, which is what a test fold of this size can resolve. Test probabilities (float16,
test order, one array per model and seed) go to results/ with the sha256 of the labels; the
scores are computed from those float16 values, so that re-scoring the files gives them exactly.

Resumable: every run lives in --store/table4 (keep it outside the clone); --minutes M starts no
run after M minutes, and the same command continues with the runs not yet finished.

Usage: python benchmarks/deepfake_table4.py --data-root ../shared/data --store ~/.cache/tf_ecg-runs/e18_table1
       [--seeds 5] [--epochs 40] [--patience 10] [--sampling-rate 100] [--minutes M]
       [--include-training-regressors]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np
import pandas as pd
from scipy.special import softmax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deepfake_table1 import scored_model  # noqa: E402
from results_io import RESULTS, run_progress, write_result  # noqa: E402
from tf_ecg.config import load_recipe  # noqa: E402
from tf_ecg.data.intervals import INTERVALS  # noqa: E402
from tf_ecg.data.sources import load_source  # noqa: E402
from tf_ecg.evaluation.metrics import multiclass_report, one_vs_rest_aucs  # noqa: E402
from tf_ecg.training.trainer import BEST, TEST_OUTPUTS, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = "deepfake_table4"
BASELINE = "baseline"
# e18 Table 4 (recovered from the original's history; full PTB-XL+ subset B, one run each): test accuracy / AUC.
PUBLISHED_TEST = {BASELINE: (0.775, 0.884), "transfer_HR": (0.764, 0.887), "transfer_QRS": (0.783, 0.876),
                  "transfer_PR": (0.764, 0.888), "transfer_QT": (0.778, 0.895)}
BOOTSTRAP_DRAWS = 2000


def transfer_sources(store: Path, rate: int, include_training: bool) -> dict[str, dict]:
    """By target, the Table 1 regressor each transfer starts from: a snapshot of its kept model
    (the one its test set scored; a regressor still training: its best so far), taken once into
    STORE/table4/sources and used by every seed (so that a regressor still training does not
    change under a half-done set of seeds). Regressors that finished, and with
    ``include_training`` those still training, are snapshotted."""
    sources = {}
    folder = store / "table4" / "sources"
    for target in INTERVALS:
        snapshot, provenance = folder / f"{target}.keras", folder / f"{target}.json"
        run_dir = store / f"deepfake_{target}_{rate}hz"
        finished = (run_dir / "test_metrics.json").is_file()
        if not provenance.is_file() and (run_dir / BEST).is_file() and (finished or include_training):
            folder.mkdir(parents=True, exist_ok=True)
            history = pd.read_csv(run_dir / "history.csv")
            if finished:  # the model its test set scored, from its validation outputs
                taken = scored_model(run_dir, history.to_dict("records"))
            else:  # best.keras holds the best epoch so far (the recipe's loss is the MAE)
                best = history.loc[history["val_loss"].idxmin()]
                taken = {"epoch": int(best["epoch"]), "val_mae": round(float(best["val_loss"]), 3)}
            shutil.copyfile(run_dir / BEST, snapshot)
            keras.models.load_model(snapshot)  # a whole file, not one caught mid-write
            provenance.write_text(json.dumps({
                "regressor": run_dir.name, "status_when_taken": "finished" if finished else "training",
                "epochs_run_when_taken": len(history), "weights_epoch": taken["epoch"], "val_mae": taken["val_mae"],
                "sha256": hashlib.sha256(snapshot.read_bytes()).hexdigest()}, indent=1))
        if provenance.is_file():
            sources[target] = {"weights": str(snapshot), **json.loads(provenance.read_text())}
    return sources


def run_one(recipe_file: str, run_dir: Path, splits, overrides: dict, minutes: float | None) -> bool:
    """Train one (model, seed) run to its end unless it has finished already; True when this
    call finished it (False: finished earlier, or paused by the time budget)."""
    if (run_dir / "test_metrics.json").is_file():
        return False
    result = train(load_recipe(REPO / "models" / recipe_file, overrides), run_dir, splits=splits, minutes=minutes)
    return not result.paused


def test_outputs(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of a finished run's kept model on the test split."""
    with np.load(run_dir / TEST_OUTPUTS) as test:
        logits, labels = test["outputs"].astype(np.float64), test["labels"].astype(int).reshape(-1)
    return labels, softmax(logits, axis=1)  # the recipes' outputs are logits


def macro_auc(labels: np.ndarray, probabilities: np.ndarray, names) -> float:
    return float(np.mean(list(one_vs_rest_aucs(labels, probabilities, names).values())))


def paired_difference(labels: np.ndarray, transfer: list[np.ndarray], baseline: list[np.ndarray], names,
                      draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """Transfer minus baseline macro AUC, seed paired with seed and averaged over seeds, with a
    percentile bootstrap over test records (the same resampled records for both models)."""
    def difference(index):
        return float(np.mean([macro_auc(labels[index], t[index], names) - macro_auc(labels[index], b[index], names)
                              for t, b in zip(transfer, baseline)]))

    rng = np.random.default_rng(seed)
    resampled = [difference(rng.integers(0, len(labels), len(labels))) for _ in range(draws)]
    low, high = np.nanpercentile(resampled, [2.5, 97.5])
    return {"mean": round(difference(np.arange(len(labels))), 4), "bootstrap_95": [round(low, 4), round(high, 4)],
            "bootstrap_draws": draws}


def summarise(models: dict[str, list[Path]], names) -> dict:
    """Per model the finished seeds' test scores, mean +- sd; per transfer the paired difference."""
    summary, outputs = {}, {}
    for model, run_dirs in models.items():
        finished = [d for d in run_dirs if (d / "test_metrics.json").is_file()]
        if not finished:
            continue
        runs = []
        for run_dir in finished:
            labels, probabilities = test_outputs(run_dir)
            probabilities = probabilities.astype(np.float16)  # scored as saved: anyone re-scores the same
            report = multiclass_report(labels, probabilities.astype(np.float64), names)
            progress = run_progress(run_dir, ())
            seed = progress["overrides"]["training.seed"]
            saved = RESULTS / f"{RESULT}_test_probabilities_{model}_seed{seed}.npy"
            np.save(saved, probabilities)
            outputs.setdefault(model, {})[seed] = probabilities.astype(np.float64)
            runs.append({"seed": seed, "epochs_run": progress["epochs_run"], "n": len(labels), "accuracy": round(report["accuracy"], 4),
                         "macro_auc": round(report["macro_auc"], 4),
                         "probabilities": f"results/{saved.name} (float16, test order, classes {list(names)})"})
        aucs, accuracies = [r["macro_auc"] for r in runs], [r["accuracy"] for r in runs]
        summary[model] = {"runs": runs, "seeds": len(runs),
                          "macro_auc_mean": round(float(np.mean(aucs)), 4),
                          "macro_auc_sd": round(float(np.std(aucs, ddof=1)), 4) if len(runs) > 1 else None,
                          "accuracy_mean": round(float(np.mean(accuracies)), 4),
                          "accuracy_sd": round(float(np.std(accuracies, ddof=1)), 4) if len(runs) > 1 else None}
    for model in summary:
        seeds = sorted(set(outputs[model]) & set(outputs.get(BASELINE, {})))
        if model != BASELINE and seeds:
            summary[model]["minus_baseline_macro_auc"] = {"seeds": seeds, **paired_difference(
                labels, [outputs[model][s] for s in seeds], [outputs[BASELINE][s] for s in seeds], names)}
    return summary


def _mean_sd(row: dict, key: str) -> str:
    sd = row[f"{key}_sd"]
    return f"{row[f'{key}_mean']:.3f}" + ("" if sd is None else f" ± {sd:.3f}")


def table(models: dict, sources: dict[str, dict], store: Path, rate: int) -> dict:
    """e18 Table 4 as the docs show it: a row per model, the published test accuracy / AUC
    beside the mean ± sd over seeds here, the paired difference to the baseline, and why a
    row is empty (its regressor has not finished, or finished on another machine)."""
    rows = {}
    for key, published in PUBLISHED_TEST.items():
        target = key.removeprefix("transfer_")
        row = {"published_test_accuracy": published[0], "published_test_auc": published[1],
               "test_auc": "-", "test_accuracy": "-", "auc_minus_baseline": "-", "seeds": 0}
        if key in models:
            measured = models[key]
            row.update(test_auc=_mean_sd(measured, "macro_auc"), test_accuracy=_mean_sd(measured, "accuracy"),
                       seeds=measured["seeds"], status="measured")
            source = sources.get(target, {})
            if source.get("status_when_taken") == "training":
                row["status"] += (f" (from its regressor's best epoch so far, {source['weights_epoch']}: "
                                  f"val MAE {source['val_mae']}; the regressor was still training)")
            if "minus_baseline_macro_auc" in measured:
                difference = measured["minus_baseline_macro_auc"]
                low, high = difference["bootstrap_95"]
                row["auc_minus_baseline"] = f"{difference['mean']:+.3f} [{low:+.3f}, {high:+.3f}]"
        elif key != BASELINE and target not in sources:
            run = store / f"deepfake_{target}_{rate}hz"
            row["status"] = ("its regressor is still training" if (run / "run.json").is_file() else
                             "its regressor's checkpoint is not in this store" if target in _finished_elsewhere() else
                             "its regressor has not been trained yet")
        else:
            row["status"] = "not run yet"
        rows[key] = row
    return rows


def _finished_elsewhere() -> set[str]:
    """Table 1 regressors the committed results show finished (possibly on another machine)."""
    table1 = RESULTS / "deepfake_table1.json"
    regressors = json.loads(table1.read_text())["results"]["regressors"] if table1.is_file() else {}
    return {target for target, summary in regressors.items() if summary.get("status") == "finished"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--store", required=True, help="deepfake_table1.py's store; the runs go to STORE/table4")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sampling-rate", type=int, default=100, help="the original: 500 Hz")
    parser.add_argument("--epochs", type=int, default=40, help="the recipes: 1000")
    parser.add_argument("--patience", type=int, default=10, help="epochs without a val-AUC gain (recipes: 50)")
    parser.add_argument("--minutes", type=float, help="start no run after this many minutes")
    parser.add_argument("--include-training-regressors", action="store_true",
                        help="also transfer from regressors still training (their best epoch so far, recorded)")
    args = parser.parse_args()
    deadline = None if args.minutes is None else time.time() + 60 * args.minutes
    store = Path(args.store).expanduser()
    rate = args.sampling_rate
    common = {"data.sampling_rate": rate, "model.options.input_length": 10 * rate, "training.epochs": args.epochs,
              "training.early_stopping.patience": args.patience}
    seeds = [load_recipe(REPO / "models" / "inception1d_superclass.toml").training.seed + i for i in range(args.seeds)]
    sources = transfer_sources(store, rate, args.include_training_regressors)
    plan = {BASELINE: ("inception1d_superclass.toml", {})}
    plan.update({f"transfer_{target}": ("inception1d_transfer_b.toml", {"model.initial_weights": source["weights"]})
                 for target, source in sources.items()})
    runs_dir = store / "table4"
    models = {model: [runs_dir / f"{model}_{rate}hz_seed{seed}" for seed in seeds] for model in plan}
    splits = load_source(load_recipe(REPO / "models" / "inception1d_superclass.toml", common).data, args.data_root)
    names = splits.output_names
    results = {"protocol": {**{k.split(".")[-1]: v for k, v in common.items()}, "seeds": seeds,
                            "split": "PTB-XL subset, strat_fold 1-8 / 9 / 10", "data": splits.info,
                            "transfer_sources": {t: {k: v for k, v in source.items() if k != "weights"}
                                                 for t, source in sources.items()},
                            "regressors_from": "benchmarks/results/deepfake_table1.json (the same store)"},
               "test_labels": {"sha256": hashlib.sha256(splits.test[1].astype(np.int64).reshape(-1).tobytes()).hexdigest(),
                               "of": "the test class indices as int64, in test order"},
               "published_test_accuracy_auc": PUBLISHED_TEST}
    def report():
        results["models"] = summarise(models, names)
        results["table"] = table(results["models"], sources, store, rate)
        write_result(RESULT, results)

    for seed_index in range(args.seeds):  # seed by seed, so that a paused call leaves whole pairs
        for model, (recipe_file, overrides) in plan.items():
            minutes = None if deadline is None else (deadline - time.time()) / 60
            if minutes is not None and minutes <= 0:
                break
            if run_one(recipe_file, models[model][seed_index], splits,
                       {**common, **overrides, "training.seed": seeds[seed_index]}, minutes):
                report()
    report()


if __name__ == "__main__":
    main()
