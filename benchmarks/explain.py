"""Are the attributions sound? Three measurements per method and model, on real data.

(a) Model randomisation (Adebayo et al. 2018): Spearman correlation of |attribution| between
    the trained model and the same architecture with freshly initialised weights, per window
    (mean reported). A method that explains the model, not the input, is well under 0.5.
(b) Faithfulness (deletion): the windows' samples set to 0 mV (the attribution baseline) in
    5 % steps, most attributed first, against a random order. Classifiers: the explained
    class's probability must fall faster (area ratio attributed / random < 1). The regressor:
    the prediction must move away from its first value faster (ratio > 1).
(c) Physiology: share of |attribution| within +-60 ms of the R peaks over the share of samples
    there (enrichment; >= 2 expected for HR and beat classifiers).

Models: the MIT-BIH beat classifier (quickstart-mitbih, DS1 -> DS2), the quickstart HR
regressor (DeepFake ECGs at 50 Hz), and the glucose supervised network with the original
checkpoint. Their runs are trained first when missing (``--store``, resumable).

    python benchmarks/explain.py --data-root ../shared/data [--store ~/.cache/tf_ecg-runs/reference]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import tf_ecg  # noqa: F401  (before TensorFlow starts: tf_ecg chooses its CPU kernels)
import keras
import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from tf_ecg.data.intervals import r_peaks  # noqa: E402
from tf_ecg.data.resample import resample  # noqa: E402
from tf_ecg.data.spec import InputSpec  # noqa: E402
from tf_ecg.explain import IG_BASELINE, IG_STEPS, METHODS, explained_outputs, grad_cam, integrated_gradients  # noqa: E402
from tf_ecg.serving import class_activation_endpoints, serving_model, serving_windows  # noqa: E402

FRACTIONS = np.round(np.arange(0, 1.0001, 0.05), 2)
R_WINDOW_S = 0.060
PER_CLASS = 8  # windows explained per class (classifiers); regressor: 32 ECGs
GLUCOSE_WEIGHTS = "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"


@dataclass
class Case:
    name: str
    model: keras.Model           # raw outputs, as trained
    spec: InputSpec
    task: str
    outputs: str                 # logits, probabilities or values
    names: list
    windows: np.ndarray          # (n, length, leads) in mV, as the export takes them
    r_peaks: list                # per window: R-peak sample indices
    samples: int                 # time steps that are ECG samples (a glucose beat's last value is its RR)
    source: str


def served(model, case: Case):
    serving = serving_model(model, case.spec, case.task, case.outputs)
    return serving, class_activation_endpoints(model, case.spec, case.task, case.outputs)


def attribute(method, serving, endpoints, windows, index, sign):
    if method == "integrated_gradients":
        return integrated_gradients(serving, windows, index, IG_STEPS, sign)
    return grad_cam(endpoints["features"], endpoints["head"], windows, index, sign)


def randomised(model: keras.Model, seed: int) -> keras.Model:
    """The same architecture with freshly initialised weights (and fresh BatchNorm statistics)."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def explained_value(outputs, index, sign, task):
    chosen = outputs[np.arange(len(outputs)), index]
    return chosen if task == "regression" else np.where(sign > 0, chosen, 1 - chosen)


def deletion(serving, case: Case, attributions, index, sign, rng) -> dict:
    """Mean curves of the explained output as samples are set to 0 mV, by attribution and at random."""
    curves = {"attributed": [], "random": []}
    for i, window in enumerate(case.windows):  # every input value, a glucose beat's RR too
        magnitude = np.abs(attributions[i]).ravel()
        orders = {"attributed": np.argsort(-magnitude, kind="stable"), "random": rng.permutation(window.size)}
        for kind, order in orders.items():
            steps = []
            for fraction in FRACTIONS:
                x = window.copy().reshape(-1)
                x[order[:int(round(fraction * window.size))]] = 0.0
                steps.append(x.reshape(window.shape))
            outputs = np.asarray(serving(np.stack(steps).astype("float32"))).reshape(len(steps), -1)
            values = explained_value(outputs, np.full(len(steps), index[i]), np.full(len(steps), sign[i]), case.task)
            curves[kind].append(np.abs(values - values[0]) if case.task == "regression" else values)
    mean = {kind: np.mean(rows, axis=0) for kind, rows in curves.items()}
    area = {kind: float(np.trapezoid(curve, FRACTIONS)) for kind, curve in mean.items()}
    ratio = area["attributed"] / area["random"] if area["random"] else float("nan")
    return {"curve": "|prediction - first prediction|" if case.task == "regression" else "explained class probability",
            "fractions": FRACTIONS.tolist(), "attributed": mean["attributed"].round(5).tolist(),
            "random": mean["random"].round(5).tolist(), "area_attributed": area["attributed"],
            "area_random": area["random"], "area_ratio": ratio,
            "passes": bool(ratio > 1 if case.task == "regression" else ratio < 1)}


def randomisation(case: Case, method, trained_attributions, index, sign, seed) -> dict:
    model = randomised(case.model, seed)
    serving, endpoints = served(model, case)
    if method == "grad_cam" and not endpoints:
        return {}
    other = attribute(method, serving, endpoints, case.windows, index, sign)
    rhos = []
    for a, b in zip(trained_attributions, other):
        a, b = np.abs(a).ravel(), np.abs(b).ravel()
        rhos.append(0.0 if a.std() == 0 or b.std() == 0 else float(spearmanr(a, b)[0]))
    return {"spearman_mean": float(np.mean(rhos)), "spearman_max": float(np.max(rhos)),
            "passes": bool(np.mean(rhos) < 0.5)}


def physiology(case: Case, attributions) -> dict:
    half = int(round(R_WINDOW_S * case.spec.sampling_rate))
    shares, sample_shares = [], []
    for a, peaks in zip(attributions, case.r_peaks):
        near = np.zeros(case.samples, bool)
        for peak in peaks:
            near[max(0, peak - half):peak + half + 1] = True
        magnitude = np.abs(a[:case.samples]).sum(axis=1)
        if magnitude.sum() > 0:
            shares.append(magnitude[near].sum() / magnitude.sum())
            sample_shares.append(near.mean())
    share, sample_share = float(np.mean(shares)), float(np.mean(sample_shares))
    result = {"share_of_attribution": share, "share_of_samples": sample_share, "enrichment": share / sample_share,
              "window": f"+-{R_WINDOW_S * 1000:.0f} ms of each R peak", "passes": bool(share / sample_share >= 2)}
    if case.samples < case.windows.shape[1]:  # a glucose beat: how much goes to its RR interval
        magnitude = np.abs(attributions)
        result["share_on_rr_interval"] = float((magnitude[:, case.samples:].sum(axis=(1, 2))
                                                / np.maximum(magnitude.sum(axis=(1, 2)), 1e-30)).mean())
    return result


def pick_per_class(labels, per_class, rng):
    rows = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def run_dir(store: Path, recipe: str, data_root) -> Path:
    """The recipe's run in the store, trained (or resumed) when not finished."""
    directory = store / recipe.replace("_", "-")
    record = directory / "run.json"
    if not record.is_file() or json.loads(record.read_text()).get("status") != "finished":
        tf_ecg.train(recipe, directory, data_root=data_root, verbose=2)
    return directory


def mitbih_case(store, data_root, rng) -> Case:
    directory = run_dir(store, "quickstart_mitbih", data_root)
    splits = tf_ecg.load_data(directory / "recipe.toml", data_root=data_root)
    x, y = splits.test
    rows = pick_per_class(y, PER_CLASS, rng)
    spec = splits.input_spec
    return Case("mitbih_beats", keras.models.load_model(directory / "best.keras"),
                spec, "multiclass", "logits", splits.output_names, serving_windows(x[rows], spec),
                [[spec.before]] * len(rows), spec.length, f"quickstart-mitbih (DS1 -> DS2) run {directory}; test split (DS2), {PER_CLASS} beats per class")


def deepfake_hr_case(store, data_root, rng) -> Case:
    from tf_ecg.deepfake import LEADS, SAMPLING_RATE

    directory = run_dir(store, "quickstart_deepfake_hr", data_root)
    spec = InputSpec(**json.loads((directory / "input_spec.json").read_text())["input_spec"])
    ecgs = tf_ecg.synth(32, seed=20261207, progress=False)  # new ECGs: the run drew with seed 0
    ratio = spec.sampling_rate / SAMPLING_RATE
    peaks = [np.round(r_peaks(ecg[:, LEADS.index("II")], SAMPLING_RATE) * ratio).astype(int) for ecg in ecgs]
    windows = resample(ecgs, SAMPLING_RATE, spec.sampling_rate, axis=1) / 1000.0  # uV -> mV
    return Case("deepfake_hr", keras.models.load_model(directory / "best.keras"),
                spec, "regression", "values", ["HR"], windows.astype("float32"), peaks, spec.length,
                f"quickstart HR regressor (50 Hz) run {directory}; 32 new DeepFake ECGs (seed 20261207), R peaks by "
                f"neurokit2 on lead II at 500 Hz")


def glucose_case(originals, data_root, rng) -> Case:
    from tf_ecg.data.glucose import AFTER_R, BEFORE_R, DATE_SPLIT, cached_study_beats
    from tf_ecg.data.paths import dataset_dir

    loaded = tf_ecg.load_preset("glucose_supervised", weights=originals / "weights" / "glucose" / GLUCOSE_WEIGHTS)
    study = cached_study_beats(str(dataset_dir("applewatch-glucose", data_root))).dates(DATE_SPLIT["test"])
    rows = pick_per_class(study.labels, PER_CLASS * 2, rng)
    spec = loaded.input_spec
    return Case("glucose_supervised", loaded.model, spec, "binary", "probabilities",
                ["fast", "glucose"], serving_windows(study.beats[rows, :, None], spec), [[BEFORE_R]] * len(rows),
                BEFORE_R + AFTER_R, f"original checkpoint {GLUCOSE_WEIGHTS}; test dates {list(DATE_SPLIT['test'])}, "
                f"{PER_CLASS * 2} beats per class")


def measure(case: Case, seed: int) -> dict:
    serving, endpoints = served(case.model, case)
    outputs = np.asarray(serving(case.windows)).reshape(len(case.windows), -1)
    index, sign, explained = explained_outputs(outputs, {"output_names": case.names, "task": case.task,
                                                         "thresholds": 0.5}, None)
    names, counts = np.unique(explained, return_counts=True)
    results = {"source": case.source, "task": case.task, "windows": len(case.windows),
               "explained": {str(n): int(c) for n, c in zip(names, counts)}}
    for method in METHODS:
        if method == "grad_cam" and not endpoints:
            results[method] = {"supported": False}
            continue
        print(f"{case.name}: {method}", flush=True)
        attributions = attribute(method, serving, endpoints, case.windows, index, sign)
        results[method] = {"randomisation": randomisation(case, method, attributions, index, sign, seed),
                           "deletion": deletion(serving, case, attributions, index, sign,
                                                np.random.default_rng(seed)),
                           "physiology": physiology(case, attributions)}
        print({k: v.get("passes") for k, v in results[method].items()}, flush=True)
    return results


def default_method(cases: dict) -> dict:
    """The default per kind of task (``tf_ecg.explain.DEFAULT_METHOD`` holds it): the method
    passing most of checks (a) and (b) over that kind's models; a tie goes to the better
    deletion (how much faster than random: ratio < 1 for classifiers, > 1 for regressors)."""
    chosen, passes = {}, {}
    for family in ("classification", "regression"):
        members = {n: c for n, c in cases.items() if (c["task"] == "regression") == (family == "regression")}
        def score(method):
            checks = sum(bool(c[method]["randomisation"].get("passes")) + bool(c[method]["deletion"]["passes"])
                         for c in members.values() if "deletion" in c.get(method, {}))
            faster = np.mean([c[method]["deletion"]["area_ratio"] ** (1 if family == "regression" else -1)
                              for c in members.values() if "deletion" in c.get(method, {})])
            return checks, faster
        passes[family] = {m: score(m)[0] for m in METHODS}
        chosen[family] = max(METHODS, key=score)
    every = [m for m in METHODS if all(c[m]["randomisation"].get("passes") and c[m]["deletion"]["passes"]
                                       for c in cases.values() if "deletion" in c.get(m, {}))]
    return {**chosen, "checks_passed": passes, "passing_both_checks_on_every_model": every,
            "passing_both_checks": {name: [m for m in METHODS if c[m]["randomisation"].get("passes")
                                           and c[m]["deletion"]["passes"]] for name, c in cases.items()},
            "rule": "per kind of task, the method passing most of checks (a) and (b); a tie goes to the better "
                    "deletion"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--originals", default="../shared/originals")
    parser.add_argument("--store", default=str(Path.home() / ".cache" / "tf_ecg-runs" / "reference"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    store, rng = Path(args.store).expanduser(), np.random.default_rng(args.seed)
    cases = {}
    for build in (mitbih_case, deepfake_hr_case, glucose_case):
        case = build(Path(args.originals) if build is glucose_case else store, args.data_root, rng)
        cases[case.name] = measure(case, args.seed)
    write_result("explain", {
        "settings": {"integrated_gradients": {"baseline": IG_BASELINE, "steps": IG_STEPS, "rule": "midpoint"},
                     "grad_cam": "last convolutional feature map, linear upsampling, the same map on every lead",
                     "deletion_baseline": "0 mV", "randomisation": "every weight re-initialised (keras clone_model)",
                     "seed": args.seed},
        "models": cases, "default": default_method(cases),
        "not_measured": {"ribeiro_code": "Ribeiro's model.hdf5 (Zenodo) is not on this machine and cannot be fetched "
                                         "here (no internet); tf-ecg explain works on the preset (tests)"}})


if __name__ == "__main__":
    main()
