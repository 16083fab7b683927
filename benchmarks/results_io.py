"""Write a benchmark result with the command, machine and date that produced it."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Versions, the CPU (model name, family, model, stepping, flags), cores and GPUs."""
    from tf_ecg.runtime import machine_info

    return machine_info()


def write_result(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"command": " ".join([Path(sys.executable).name] + sys.argv),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "results": results}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written {path}")
    return path
