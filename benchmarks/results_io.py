"""Write a benchmark result with the command, machine and date that produced it."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Versions, the CPU (model name, family, model, stepping, flags), cores and GPUs."""
    from tf_ecg.runtime import machine_info

    return machine_info()


def run_progress(run_dir: Path, columns) -> dict:
    """Where a (paused, interrupted or finished) training run stands: its status, epochs run,
    parameters, runtime, overrides and the history's ``columns`` (those it has), per epoch."""
    import pandas as pd

    record = json.loads((run_dir / "run.json").read_text())
    history_file = run_dir / "history.csv"  # written with the first finished epoch
    history = pd.read_csv(history_file) if history_file.is_file() and history_file.stat().st_size else pd.DataFrame()
    # "running" read after train() returned or was skipped: a process that was stopped
    status = "interrupted (resumes from its last finished epoch)" if record["status"] == "running" else record["status"]
    return {"status": status, "epochs_run": len(history), "parameters": record["model"]["parameters"],
            "runtime": record["runtime"], "overrides": record["overrides"],
            "history": [{k: (int(v) if k == "epoch" else round(float(v), 5)) for k, v in row.items()}
                        for row in history[[c for c in columns if c in history]].to_dict("records")]}


def earlier_result(name: str) -> dict:
    """What an earlier call wrote to results/{name}.json (the committed file), or {}."""
    previous = RESULTS / f"{name}.json"
    return json.loads(previous.read_text()) if previous.is_file() else {}


def finished_elsewhere(earlier: dict, section: str, key: str, run_dir: Path, unfinished: bool = False) -> dict | None:
    """The run ``earlier["results"][section][key]`` if an earlier call finished it (or, with
    ``unfinished``, ran it at all) and this machine's store lacks ``run_dir`` (it trained in a
    session on another machine): kept as written, with the machine it ran on, so a fresh
    machine does not train it again and a results file does not lose it."""
    run = earlier.get("results", {}).get(section, {}).get(key, {})
    if run_dir.is_dir() or not run or (run.get("status") != "finished" and not unfinished):
        return None
    return {"machine": earlier["machine"], **run}


def write_result(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"command": " ".join([Path(sys.executable).name] + sys.argv),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "results": results}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written {path}")
    return path


PEAK = "PEAK_RESIDENT_KIB"
# Printed by a measured process as it ends. VmHWM, the peak resident memory of the process's
# own address space: ru_maxrss would start from the RSS of the parent that forked it
# (Linux keeps it across exec), so a benchmark holding a model would floor every child.
PRINT_PEAK = (f"print('{PEAK}', next(int(line.split()[1]) for line in open('/proc/self/status') "
              "if line.startswith('VmHWM:')))")
MEASURED_CLI = f"import sys; from tf_ecg.cli import main; code = main(sys.argv[1:]); {PRINT_PEAK}; sys.exit(code)"


def measured(command: list[str]) -> tuple[float, float, str]:
    """(peak resident MiB, seconds, standard output) of ``command``, a fresh process that
    prints ``PRINT_PEAK`` last (``[python, "-c", MEASURED_CLI, *tf_ecg_arguments]`` does)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    peak = next(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith(PEAK))
    return round(peak / 1024, 1), round(time.perf_counter() - started, 1), done.stdout
