"""InputSpec: how a raw recording becomes model input, for training sources and inference."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tf_ecg.data.beats import beat_windows, minmax_scale
from tf_ecg.data.conventions import MILLIVOLTS_PER_UNIT, lead_indices
from tf_ecg.data.plausibility import FLAT_RANGE_MV, flat_leads
from tf_ecg.errors import ECGDataError


@dataclass
class InputSpec:
    kind: str                       # "segment": consecutive windows; "beat": windows around R peaks;
                                    # also "glucose_beat", "code_exam", "kaggle_beat" (see prepare_windows)
    sampling_rate: float
    length: int
    leads: list[str] | None         # lead names in model order; None: the first num_leads channels
    num_leads: int
    normalisation: str = "minmax_per_lead"
    before: int = 0                 # beat windows: samples before / after the R peak
    after: int = 0
    lead_labels: list[str] | None = None  # display names where leads are taken by position
    units: str = "mV"               # amplitude units of the model's (un-normalised) inputs

    def to_dict(self) -> dict:
        return asdict(self)

    def display_leads(self) -> list[str]:
        """Names to show beside each channel of a strip."""
        return list(self.leads or self.lead_labels or [f"channel {i + 1}" for i in range(self.num_leads)])

    def units_label(self) -> str:
        """The amplitude units of model inputs, for axis labels."""
        return {"minmax_per_lead": "min-max scaled, 0-1", "none": "as recorded"}.get(self.normalisation,
                                                                                      self.normalisation)


def normalise(x: np.ndarray, method: str) -> np.ndarray:
    """Per-example normalisation named in an InputSpec (x: (n, length, leads))."""
    if method == "minmax_per_lead":
        return minmax_scale(x, axis=1)
    if method == "none":
        return x.astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r}")


def select_leads(signal: np.ndarray, lead_names, spec: InputSpec, path) -> np.ndarray:
    """The model's leads of a (samples, leads) signal: by name where both sides name them
    (any spelling: DI = I, AVR = aVR), else by position."""
    if signal.ndim != 2:
        raise ECGDataError(path, f"expected a (samples, leads) signal, got shape {signal.shape}")
    needs = f"the model needs {spec.num_leads} lead(s)" + (f" ({', '.join(spec.leads)})" if spec.leads else "")
    if signal.shape[1] == 1 < spec.num_leads:
        raise ECGDataError(path, f"single-lead file: {needs}")
    if spec.leads and lead_names:
        return signal[:, lead_indices(lead_names, spec.leads, path)]
    if signal.shape[1] < spec.num_leads or (spec.leads and signal.shape[1] != spec.num_leads):
        raise ECGDataError(path, f"{signal.shape[1]} leads: {needs}")
    return signal[:, :spec.num_leads]


def model_lead_names(lead_names, spec: InputSpec) -> list[str]:
    """How to name the model's leads of a file in a message: the model's names, else the
    file's first ones, else channel numbers."""
    if spec.leads:
        return list(spec.leads)
    if lead_names:
        return list(lead_names)[:spec.num_leads]
    return [f"channel {i + 1}" for i in range(spec.num_leads)]


def check_not_flat(signal_mv: np.ndarray, names, path) -> None:
    """A flat (constant, disconnected) lead of a (samples, leads) millivolt signal is an error naming it."""
    flat = flat_leads(signal_mv, names)
    if flat:
        raise ECGDataError(path, f"lead {', '.join(flat)} {'is' if len(flat) == 1 else 'are'} flat (robust range "
                                 f"below {FLAT_RANGE_MV:g} mV): a constant or disconnected lead; no prediction "
                                 f"is made from it")


def _checked_leads(signal, lead_names, spec: InputSpec, path) -> np.ndarray:
    """The model's leads of a signal, which must hold no NaN and no flat lead."""
    signal = select_leads(np.asarray(signal, dtype=np.float32), lead_names, spec, path)
    if np.isnan(signal).any():
        raise ECGDataError(path, f"{int(np.isnan(signal).sum())} NaN samples in the signal")
    check_not_flat(signal, model_lead_names(lead_names, spec), path)
    return signal


def prepare_windows(signal: np.ndarray, sampling_rate: float, lead_names, spec: InputSpec,
                    path) -> tuple[np.ndarray, np.ndarray]:
    """A recording in millivolts at any rate -> the serving input of an exported model:
    (windows (n, length, leads) at the model's rate in millivolts, start sample of each
    window / R-peak sample). Unit scaling, padding and per-lead min-max happen inside the
    SavedModel (``tf_ecg.serving``); what is done here is what TensorFlow cannot express:
    resampling, R-peak detection, beat cutting. ``code_exam``: one window, any length.
    """
    from tf_ecg.data.resample import resample  # here: scipy.signal takes a second to import, presets need none

    path = Path(path)
    signal = _checked_leads(signal, lead_names, spec, path)
    if spec.kind == "code_exam":  # whole exams at any rate -> 400 Hz (Ribeiro/CODE); padded in the graph
        return resample(signal, sampling_rate, spec.sampling_rate, path=path)[None], np.zeros(1, np.int64)
    if spec.kind == "kaggle_beat":  # any rate -> 125 Hz, Kachuee beats from detected R peaks
        from tf_ecg.data.heartbeats import SAMPLING_RATE, kachuee_beats, to_125_hz
        from tf_ecg.data.intervals import r_peaks

        lead = signal[:, 0]
        peaks = np.round(r_peaks(lead, sampling_rate) * SAMPLING_RATE / sampling_rate).astype(np.int64)
        if len(peaks) == 0:
            raise ECGDataError(path, "no beat found (R-peak detection found no peaks)")
        return kachuee_beats(to_125_hz(lead, sampling_rate), peaks)[..., None], peaks
    if not np.isclose(sampling_rate, spec.sampling_rate):
        # the same polyphase resampler the training sources use (e.g. DeepFake 500 -> 50 Hz)
        signal = resample(signal, sampling_rate, spec.sampling_rate, path=path)
    if spec.kind == "segment":
        count = len(signal) // spec.length
        if count == 0:
            raise ECGDataError(path, f"{len(signal)} samples; the model needs at least {spec.length}")
        starts = np.arange(count) * spec.length
        windows = signal[: count * spec.length].reshape(count, spec.length, -1)
    elif spec.kind == "beat":
        from tf_ecg.data.intervals import r_peaks

        peaks = r_peaks(signal[:, 0], spec.sampling_rate)
        windows, kept = beat_windows(signal, peaks, spec.before, spec.after)
        starts = peaks[kept]
        if len(windows) == 0:
            raise ECGDataError(path, "no complete beat found (R-peak detection found no usable peaks)")
    elif spec.kind == "glucose_beat":
        from tf_ecg.data.glucose import trimmed_beats

        # As the glucose study: drop the first ~3 s, R peaks from the cleaned signal,
        # beats from the raw one (in its microvolts), RR interval (samples) appended.
        beats, starts = trimmed_beats(signal[:, 0] / MILLIVOLTS_PER_UNIT["uV"], path)
        beats[:, :-1] *= MILLIVOLTS_PER_UNIT["uV"]  # back to millivolts; the RR value is no amplitude
        windows = beats[..., None].astype(np.float32)
    else:
        raise ValueError(f"unknown input kind {spec.kind!r}")
    return windows.astype(np.float32), starts
