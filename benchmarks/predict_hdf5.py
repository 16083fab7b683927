"""CODE HDF5 in, scores out: peak memory of ``tf-ecg predict`` for two file sizes, and the
scores against ``model.predict`` on the same exams held in memory.

Usage: python benchmarks/predict_hdf5.py [--sizes 128 1024] [--work DIR]

Each size is written as a Ribeiro-format file (``tracings`` (N, 4096, 12) float32 in mV,
chunked per exam, plus ``exam_id``), scored by ``tf-ecg predict`` in a fresh process
(``VmHWM`` of that process is its peak resident memory), and compared with
``model.predict`` on the first exams. The model is the ``ribeiro_code`` preset with
random weights (the published ``model.hdf5`` is not reachable here); memory and
equality do not depend on the weights.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import MEASURED_CLI, measured, write_result  # noqa: E402

CHECKED = 64  # exams compared with model.predict on the in-memory array


def write_tracings(path: Path, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as handle:
        tracings = handle.create_dataset("tracings", (count, 4096, 12), dtype="float32", chunks=(1, 4096, 12))
        for start in range(0, count, 64):
            block = min(64, count - start)
            tracings[start:start + block] = rng.normal(scale=0.3, size=(block, 4096, 12)).astype("float32")
        handle.create_dataset("exam_id", data=np.arange(count) + 10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--work", help="folder for the HDF5 files (default: a temporary folder)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import keras

    from tf_ecg import build_model
    from tf_ecg.saved_model import export_preset_model

    work = Path(args.work or tempfile.mkdtemp(prefix="tf_ecg_hdf5_"))
    work.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = build_model("ribeiro_resnet")
    saved = export_preset_model("ribeiro_code", model, work / "ribeiro_code")
    runs = []
    for count in args.sizes:
        source = work / f"tracings_{count}.hdf5"
        write_tracings(source, count)
        out = work / f"scores_{count}.npy"
        out.unlink(missing_ok=True)
        command = [sys.executable, "-c", MEASURED_CLI, "predict", str(saved), str(source), "--out", str(out),
                   "--batch-size", str(args.batch_size)]
        peak_mib, seconds, _ = measured(command)
        with h5py.File(source, "r") as handle:
            first = handle["tracings"][:CHECKED]
        scores = np.load(out)
        difference = float(np.abs(scores[:CHECKED] - model.predict(first, verbose=0)).max())
        runs.append({"exams": count, "file_mib": round(source.stat().st_size / 2**20, 1),
                     "peak_rss_mib": peak_mib,
                     "seconds": round(seconds, 1), "exams_per_second": round(count / seconds, 1),
                     "scores_shape": list(scores.shape),
                     f"max_abs_difference_to_model_predict_first_{CHECKED}": difference})
        print(runs[-1])
        source.unlink()
    write_result("predict_hdf5", {
        "model": "ribeiro_code preset (random weights), SavedModel", "batch_size": args.batch_size,
        "how": "tf-ecg predict SAVED tracings.hdf5 --out scores.npy in a fresh process per size; peak = "
               "that process's own VmHWM",
        "runs": runs})


if __name__ == "__main__":
    main()
