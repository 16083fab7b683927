"""Execute the notebooks in place on the real data, so that they are stored with their outputs.

Each notebook runs on the full data under `../shared/data` (never TF_ECG_QUICK: quick subsets
are for the tests, which execute the notebooks in memory and never write them back). The
settings a notebook ran with, the date, the CPU and the wall time go into its metadata
(`tf_ecg_execution`).

Usage: python notebooks/execute.py [NAME ...] [--set NAME:VAR=VALUE ...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tf_ecg.runtime import cpu_info

NOTEBOOKS = Path(__file__).resolve().parent
DATA_ROOT = NOTEBOOKS.parents[1] / "shared" / "data"
# What each stored run trains: the full data sets; the recipes' epochs where a 2-core CPU affords
# them (glucose; leave-one-out reuses the benchmark's finished folds), fewer where it does not
# (the converged figures come from benchmarks/results, which the notebooks read).
SETTINGS = {
    "1_ribeiro_autoecg": {"TF_ECG_EPOCHS": "10"},
    "2_ptbxl_inception1d_deepfake": {"TF_ECG_EPOCHS": "2"},
    "3_mitbih_resnext": {"TF_ECG_EPOCHS": "1"},
    "4_mitbih_leave_one_out": {},
    "5_glucose_comparator": {},
}


def execute(name: str, environment: dict[str, str], timeout_s: int) -> float:
    """Run one notebook top to bottom and write it back with its outputs; returns the wall time.
    A cell that raises stops the run and leaves the stored notebook as it was."""
    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in ("TF_ECG_DATA_ROOT", "TF_ECG_QUICK", *environment)}
    os.environ.pop("TF_ECG_QUICK", None)
    os.environ.setdefault("TF_ECG_DATA_ROOT", str(DATA_ROOT))
    os.environ.update(environment)
    started = time.perf_counter()
    try:
        NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    wall_s = time.perf_counter() - started
    notebook.metadata["tf_ecg_execution"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment, "cpu": cpu_info(), "wall_s": round(wall_s, 1)}
    nbformat.write(notebook, path)
    return wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"default: all ({', '.join(SETTINGS)})")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:VAR=VALUE",
                        help="another setting for one notebook, e.g. 4_mitbih_leave_one_out:TF_ECG_EPOCHS=10")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds one cell may run")
    args = parser.parse_args()
    names = args.names or list(SETTINGS)
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        parser.error(f"no notebook {', '.join(unknown)}: expected {', '.join(SETTINGS)}")
    settings = {name: dict(values) for name, values in SETTINGS.items()}
    for item in args.set:
        name, _, assignment = item.partition(":")
        variable, _, value = assignment.partition("=")
        if name not in settings or not variable or not value:
            parser.error(f"--set {item!r}: expected NAME:VAR=VALUE with NAME one of {', '.join(settings)}")
        settings[name][variable] = value
    for name in names:
        print(f"{name}: {settings[name]}", flush=True)
        print(f"{name}: stored with outputs ({execute(name, settings[name], args.timeout):.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
