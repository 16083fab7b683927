"""Memory that does not grow with the data set: CODE-15%-layout files of two sizes, each
converted to shards, trained from and predicted on, every step in a fresh process.

Usage: python benchmarks/scale.py [--sizes 2000 8000] [--work DIR] [--steps 5]

For each size the script writes a synthetic data set in the CODE-15% layout
(``tf_ecg.data.formats.code15.write_code15_layout``: exams.csv plus one exams_part0.hdf5, rows
shuffled, padding and empty rows), then measures the peak resident memory (VmHWM of the
process) of

- ``tf-ecg data shards code15``;
- training: one full pass over the training shards through the trainer's tf.data
  pipeline (samples/s of the pipeline alone), then ``--steps`` Ribeiro ResNet training
  steps on its batches (samples/s the train step consumes);
- ``tf-ecg predict`` of the ``ribeiro_code`` preset (random weights) on exams_part0.hdf5.

Pass criteria recorded in the JSON: each peak grows by less than 15 % from the small to
the large set; the pipeline delivers at least 10x the samples per second the step takes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import MEASURED_CLI, PRINT_PEAK, measured, write_result  # noqa: E402

BATCH = 64


def train_child(shards: str, steps: int) -> None:
    """The training measurement, run as ``scale.py --child-train SHARDS STEPS``."""
    import keras

    from tf_ecg import build_model
    from tf_ecg.data.formats.shards import ShardedSplits

    splits = ShardedSplits.open(shards, shuffle_buffer=1024)
    data = splits.dataset("train", BATCH, shuffle=True, seed=0, drop_remainder=True)
    started, seen = time.perf_counter(), 0
    for x, _ in data:  # a whole epoch through the pipeline alone
        seen += int(x.shape[0])
    pipeline = seen / (time.perf_counter() - started)
    keras.utils.set_random_seed(0)
    model = build_model("ribeiro_resnet")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    batches = iter(data.repeat())
    model.train_on_batch(*next(batches))  # warm-up: tracing
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*next(batches))
    step = steps * BATCH / (time.perf_counter() - started)
    print(json.dumps({"pipeline_samples_per_second": round(pipeline, 1), "epoch_examples": seen,
                      "train_step_samples_per_second": round(step, 2)}))
    exec(PRINT_PEAK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 8000])
    parser.add_argument("--work", help="folder for the data sets (default: a temporary folder)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child-train", nargs=2, metavar=("SHARDS", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_train:
        return train_child(args.child_train[0], int(args.child_train[1]))

    import keras

    from tf_ecg import build_model
    from tf_ecg.data.formats.code15 import write_code15_layout
    from tf_ecg.saved_model import export_preset_model

    work = Path(args.work or tempfile.mkdtemp(prefix="tf_ecg_scale_"))
    keras.utils.set_random_seed(0)
    saved = export_preset_model("ribeiro_code", build_model("ribeiro_resnet"), work / "saved_ribeiro")
    runs = []
    for exams in args.sizes:
        root = work / f"exams{exams}"
        started = time.perf_counter()
        write_code15_layout(root / "code15", exams, parts=1, seed=exams)
        written = round(time.perf_counter() - started, 1)
        shards = root / "shards" / "code15"
        convert_peak, convert_seconds, output = measured(
            [sys.executable, "-c", MEASURED_CLI, "data", "shards", "code15", "--data-root", str(root), "--out", str(shards)])
        manifest = json.loads((shards / "manifest.json").read_text())
        train_peak, train_seconds, output = measured(
            [sys.executable, __file__, "--child-train", str(shards), str(args.steps)])
        training = json.loads(output.splitlines()[0])
        predict_peak, predict_seconds, _ = measured(
            [sys.executable, "-c", MEASURED_CLI, "predict", str(saved), str(root / "code15" / "exams_part0.hdf5"),
             "--out", str(root / "scores.npy")])
        runs.append({"exams": exams, "hdf5_mib": round((root / "code15" / "exams_part0.hdf5").stat().st_size / 2 ** 20, 1),
                     "written_seconds": written,
                     "shards": {"peak_rss_mib": convert_peak, "seconds": convert_seconds,
                                "examples": {s: c["examples"] for s, c in manifest["splits"].items()},
                                "files": sum(len(c["shards"]) for c in manifest["splits"].values()),
                                "mib": round(sum(s["bytes"] for c in manifest["splits"].values() for s in c["shards"]) / 2 ** 20, 1),
                                "skipped": manifest["skipped"]},
                     "training": {"peak_rss_mib": train_peak, "seconds": train_seconds, "steps": args.steps,
                                  "batch_size": BATCH, **training},
                     "predict": {"peak_rss_mib": predict_peak, "seconds": predict_seconds}})
        print(json.dumps(runs[-1], indent=1))
    small, large = runs
    growth = {part: round(large[part]["peak_rss_mib"] / small[part]["peak_rss_mib"] - 1, 4)
              for part in ("shards", "training", "predict")}
    ratio = min(run["training"]["pipeline_samples_per_second"] / run["training"]["train_step_samples_per_second"]
                for run in runs)
    write_result("scale", {
        "data": "synthetic CODE-15% layout (tf_ecg.data.formats.code15.write_code15_layout), one part file per size",
        "model": "ribeiro_resnet (random weights), batch 64; prediction: ribeiro_code preset SavedModel",
        "runs": runs, "peak_rss_growth_small_to_large": growth,
        "pipeline_over_train_step": round(ratio, 1),
        "pass": {"rss_growth_below_15_percent": all(g < 0.15 for g in growth.values()),
                 "pipeline_at_least_10x_train_step": ratio >= 10}})


if __name__ == "__main__":
    main()
