"""What real surface ECGs measure, in millivolts: the thresholds behind tf_ecg's flat-lead
error and implausible-amplitude warning (``tf_ecg.data.plausibility``, docs/input_contracts.md).

Per lead of every real recording in ../shared/data: the robust range (99.5th minus 0.5th
percentile, in mV: spikes and a few clipped samples do not move it); per recording: the
median of its leads' robust ranges (the amplitude the warning checks). MIT-BIH (48 records,
2 leads, 360 Hz), PTB-XL (500 records at 100 and 500 Hz, 12 leads), the Apple Watch
recordings of the glucose study (single lead, microvolts in the files).

Usage: python benchmarks/amplitudes.py --data-root ../shared/data  -> results/amplitudes.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.data.formats.applewatch import read_applewatch_csv  # noqa: E402
from tf_ecg.data.conventions import to_millivolts  # noqa: E402
from tf_ecg.data.plausibility import (FLAT_RANGE_MV, PLAUSIBLE_AMPLITUDE_MV, lead_ranges,  # noqa: E402
                                      recording_amplitude)
from tf_ecg.data.formats.wfdb_records import read_record  # noqa: E402


def _recordings(root: Path):
    """(data set, name, signal in mV (samples, leads)) of every real recording."""
    for header in sorted((root / "mitdb").glob("*.hea")):
        yield "mitdb", header.stem, read_record(header.with_suffix("")).signal
    for rate in ("records100", "records500"):
        for header in sorted((root / "ptbxl" / rate).rglob("*.hea")):
            yield f"ptbxl_{rate}", header.stem, read_record(header.with_suffix("")).signal
    for folder in ("applewatch-glucose", "applewatch-glucose-2024-01"):
        for csv in sorted((root / folder).rglob("*.csv")):
            signal = read_applewatch_csv(csv).signal[:, None]
            yield "applewatch", csv.stem, to_millivolts(signal, "uV", csv)


def _summary(values: list[float]) -> dict:
    values = np.asarray(values)
    return {"n": len(values), "min": round(float(values.min()), 4),
            **{f"p{q}": round(float(np.percentile(values, q)), 4) for q in (1, 5, 50, 95, 99)},
            "max": round(float(values.max()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    args = parser.parse_args()
    leads, amplitudes = {}, {}
    for data_set, name, signal in tqdm(list(_recordings(Path(args.data_root))), desc="recordings", unit="rec"):
        leads.setdefault(data_set, []).extend(lead_ranges(signal).tolist())
        amplitudes.setdefault(data_set, []).append(recording_amplitude(signal))
    every_lead = [v for values in leads.values() for v in values]
    every_recording = [v for values in amplitudes.values() for v in values]
    results = {
        "definition": {"lead robust range": "99.5th minus 0.5th percentile of the lead, mV",
                       "recording amplitude": "median over the recording's leads of their robust ranges, mV"},
        "lead_robust_range_mV": {**{k: _summary(v) for k, v in leads.items()}, "all": _summary(every_lead)},
        "recording_amplitude_mV": {**{k: _summary(v) for k, v in amplitudes.items()}, "all": _summary(every_recording)},
        "thresholds_in_use": {"flat_lead_below_mV": FLAT_RANGE_MV, "plausible_amplitude_mV": list(PLAUSIBLE_AMPLITUDE_MV)},
        "every_real_lead_passes_the_flat_check": bool(min(every_lead) >= FLAT_RANGE_MV),
        "every_real_recording_is_plausible": bool(PLAUSIBLE_AMPLITUDE_MV[0] <= min(every_recording)
                                                  and max(every_recording) <= PLAUSIBLE_AMPLITUDE_MV[1]),
    }
    write_result("amplitudes", results)


if __name__ == "__main__":
    main()
