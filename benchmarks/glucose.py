"""System 5: the original checkpoints and models trained from scratch, on the test dates
and on the January 2024 recordings; training throughput of both models.

Usage: python benchmarks/glucose.py --data-root ../shared/data [--seeds 0 1 2] [--epochs N] [--result NAME]
                                    [--resume]
Writes benchmarks/results/NAME.json (default glucose.json) after every seed (partial results
survive): the recipes' full length goes to its own file beside the shorter runs. With
``--resume``, seeds already in that file (same epochs, same library) are kept and not
trained again, so a run cut by a session's end continues in the next one. "Same library" is
the git tree of ``tf_ecg/`` (code and recipes) at HEAD: commit library changes first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import RESULTS, write_result  # noqa: E402
from tf_ecg.data.glucose import DATE_SPLIT, study_beats  # noqa: E402
from tf_ecg.evaluation.glucose import evaluate_comparator, evaluate_supervised, reference_bank, summarise  # noqa: E402
from tf_ecg.config import load_recipe  # noqa: E402
from tf_ecg.training.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUPERVISED = "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"
COMPARATOR = "effnetv2_ecg_comparator_v5_l_xxxs_20240111_epoch100_4e-3.pth"
BANKS = range(5)


def evaluate_both(supervised, comparator, sets, train_beats) -> dict:
    result = {"supervised": {name: evaluate_supervised(supervised, data) for name, data in sets.items()}}
    per_bank = {name: [evaluate_comparator(comparator, data, reference_bank(train_beats, seed)) for seed in BANKS]
                for name, data in sets.items()}
    result["comparator"] = {name: {"per_bank": runs, "over_banks": summarise(runs)} for name, runs in per_bank.items()}
    return result


def throughput(name: str, steps: int = 30) -> float:
    model = tf_ecg.build_model(name)
    model.compile(keras.optimizers.Adam(1e-4, epsilon=1e-8), "binary_crossentropy")
    x = tf.random.normal((128, 384, 1))
    inputs, y = ((x, tf.zeros((128, 1))) if name == "effnetv2_ecg_l_xxxs"
                 else ([x[:64], x[64:]], tf.zeros((64, 1))))
    model.train_on_batch(inputs, y)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, y)
    return steps * 128 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--originals", default=str(REPO.parent / "shared" / "originals"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the recipes' epochs (quick runs)")
    parser.add_argument("--result", default="glucose", help="name of the results file")
    parser.add_argument("--resume", action="store_true", help="keep the seeds already in the results file")
    args = parser.parse_args()
    # the library's own tree (code and recipes): seeds trained by the same library are comparable
    library = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD:tf_ecg"], capture_output=True,
                             text=True).stdout.strip()

    root = Path(args.data_root)
    beats = study_beats(root / "applewatch-glucose")
    train_beats = beats.dates(DATE_SPLIT["train"])
    sets = {"val": beats.dates(DATE_SPLIT["val"]), "test": beats.dates(DATE_SPLIT["test"]),
            "additional_2024_01": study_beats(root / "applewatch-glucose-2024-01", leading_samples_removed=10)}
    results = {"beats": {name: int(len(d.labels)) for name, d in [("train", train_beats), *sets.items()]},
               "reference_bank": "first 50 fast + 50 glucose of a shuffled draw of 200 training beats, seeds 0-4",
               "throughput_beats_per_s": {n: round(throughput(n), 1)
                                          for n in ("effnetv2_ecg_l_xxxs", "effnetv2_comparator_v5")}}
    weights = Path(args.originals) / "weights" / "glucose"
    supervised = tf_ecg.load_original_weights(tf_ecg.build_model("effnetv2_ecg_l_xxxs"), weights / SUPERVISED)
    comparator = tf_ecg.load_original_weights(tf_ecg.build_model("effnetv2_comparator_v5"), weights / COMPARATOR)
    results["original_checkpoints"] = evaluate_both(supervised, comparator, sets, train_beats)
    write_result(args.result, results)

    overrides = {"training.epochs": args.epochs} if args.epochs else {}
    runs = finished_runs(RESULTS / f"{args.result}.json", args.epochs or "recipe", library) if args.resume else []
    runs = [run for run in runs if run["seed"] in args.seeds]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            if any(run["seed"] == seed for run in runs):
                print(f"seed {seed}: kept from the results file")
                continue
            started = time.time()
            trained = {}
            for recipe_name in ("glucose_supervised", "glucose_comparator"):
                recipe = load_recipe(REPO / "models" / f"{recipe_name}.toml", {**overrides, "training.seed": seed})
                trained[recipe_name] = train(recipe, Path(tmp) / f"{recipe_name}-{seed}", data_root=root, verbose=0).model
            run = evaluate_both(trained["glucose_supervised"], trained["glucose_comparator"], sets, train_beats)
            runs.append({"seed": seed, "seconds": round(time.time() - started), "tf_ecg_tree": library, **run})
            runs.sort(key=lambda r: r["seed"])
            results["from_scratch"] = {"epochs": args.epochs or "recipe", "runs": runs,
                                       "over_seeds": over_seeds(runs, sets)}
            write_result(args.result, results)


def finished_runs(path: Path, epochs, library: str) -> list[dict]:
    """The seeds a results file holds for these epochs, trained by this tf_ecg tree."""
    if not path.exists():
        return []
    done = json.loads(path.read_text())["results"].get("from_scratch", {})
    if done.get("epochs") != epochs:
        return []
    return [run for run in done.get("runs", []) if run.get("tf_ecg_tree") == library]


def over_seeds(runs: list[dict], sets) -> dict:
    out = {"supervised": {}, "comparator": {}}
    for name in sets:
        out["supervised"][name] = summarise([r["supervised"][name] for r in runs])
        out["comparator"][name] = summarise([{k: v["mean"] for k, v in r["comparator"][name]["over_banks"].items()}
                                             for r in runs])
    return out


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
