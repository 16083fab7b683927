"""Presets: how each published model is used, from its weight file to its predictions.

A preset names the model and its builder options, the input contract (sampling rate,
length and padding, leads in order, units, normalisation), the outputs and the task, the
decision thresholds, and where the weights come from (the file a user supplies, its
format, its sha256 where the file is published). ``tf-ecg presets`` prints the table,
``tf-ecg export --preset NAME --weights FILE`` turns a weight file into a SavedModel that
``tf-ecg predict`` serves. The input contracts are written out in ``docs/input_contracts.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tf_ecg.data.conventions import STANDARD_LEADS
from tf_ecg.data.spec import InputSpec
from tf_ecg.errors import TfEcgInputError

E18_LEADS = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
RIBEIRO_CLASSES = ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
RIBEIRO_TABLE2_THRESHOLDS = [0.124, 0.07, 0.05, 0.278, 0.390, 0.174]
CODE_EXAM = InputSpec("code_exam", 400, 4096, list(STANDARD_LEADS), 12, normalisation="none")
E18_WINDOW = InputSpec("segment", 500, 5000, E18_LEADS, 8)
GLUCOSE_BEAT = InputSpec("glucose_beat", 512, 384, ["I"], 1, normalisation="none", units="uV")
GLUCOSE_REPOSITORY = "github.com/Jiazxu/ecg_glucose_comparator (checkpoints/)"
GLUCOSE_RAW = "https://raw.githubusercontent.com/Jiazxu/ecg_glucose_comparator/main/checkpoints"


class UnknownPresetError(TfEcgInputError):
    def __init__(self, name: str):
        super().__init__(None, f"unknown preset {name!r}; known: {', '.join(PRESETS)}")


@dataclass(frozen=True)
class WeightSource:
    format: str               # "keras_hdf5", "torch_state_dict" or "torch_legacy" (the packaged generator)
    file: str                 # the file name users have
    where: str                # where it is published, or who makes it
    sha256: str | None = None  # of the published file; None where nothing is published (a user's own training)
    url: str | None = None     # where tf_ecg fetches it from when no file is given (None: not public)
    member: str | None = None  # the file inside the archive at ``url``


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: str
    input_spec: InputSpec
    output_names: list[str]
    task: str                 # regression, multiclass, multilabel, binary, comparator, generator
    outputs: str              # what the network emits: values, logits or probabilities
    weights: WeightSource
    parameters: int           # Keras count_params(): every weight, BatchNorm statistics included
    options: dict = field(default_factory=dict)
    thresholds: list[float] | float | None = None
    output_units: str | None = None
    notes: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _e18_regressor(target: str, units: str) -> Preset:
    suffix = "" if target == "HR" else f"_{target.lower()}"
    return Preset(
        f"e18_inception1d_regressor{suffix}",
        f"e18 Inception1d, {target} regression ({units}) on 10-s 8-lead ECGs",
        "inception1d", E18_WINDOW, [target], "regression", "values",
        WeightSource("torch_state_dict", f"{target.lower()}_model.pth",
                     "your own training of e18 Inception1d(num_classes=1): torch.save(model.state_dict())"),
        509_185, options={"num_outputs": 1}, output_units=units,
        notes="one model per target; e18's PTB-XL+ PR and QT labels are swapped (docs/deviations.md)")


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("ribeiro_code", "Ribeiro et al. 2020 ResNet: 6 ECG abnormalities from a 12-lead CODE exam",
           "ribeiro_resnet", CODE_EXAM, RIBEIRO_CLASSES, "multilabel", "probabilities",
           WeightSource("keras_hdf5", "model.hdf5",
                        "Zenodo 10.5281/zenodo.3625017 (record 3765717), model.zip -> model/model.hdf5 (sha256 "
                        "not recorded: the file is not reachable from the machines this library is built on; "
                        "the first download records it)",
                        url="https://zenodo.org/records/3765717/files/model.zip", member="model/model.hdf5"),
           6_425_638, thresholds=RIBEIRO_TABLE2_THRESHOLDS,
           notes="thresholds: Table 2 of the paper (a class is positive when its output is > its threshold)"),
    Preset("autoecg_transfer", "autoECG transfer model: normal vs abnormal from a 12-lead CODE exam",
           "autoecg_transfer", CODE_EXAM, ["normal", "abnormal"], "binary", "probabilities",
           WeightSource("keras_hdf5", "transfer_model.h5",
                        "your own training of autoECG's transfer model (Keras model.save / save_weights)"),
           6_489_665, thresholds=0.5),
    _e18_regressor("HR", "bpm"), _e18_regressor("QRS", "ms"), _e18_regressor("PR", "ms"), _e18_regressor("QT", "ms"),
    Preset("e18_inception1d_superclass", "e18 Inception1d: PTB-XL diagnostic superclass of a 10-s 8-lead ECG",
           "inception1d", E18_WINDOW, ["MI", "STTC", "HYP", "NORM", "CD"], "multiclass", "logits",
           WeightSource("torch_state_dict", "classification_model.pth",
                        "your own training of e18 Inception1d(num_classes=5): torch.save(model.state_dict())"),
           509_701, options={"num_outputs": 5}),
    Preset("mitbih_resnext", "ResNeXt with the proposed connection: AAMI class of each heartbeat",
           "mitbih_resnext", InputSpec("kaggle_beat", 125, 187, None, 1, normalisation="none", lead_labels=["MLII"]),
           ["N", "S", "V", "F", "Q"], "multiclass", "logits",
           WeightSource("torch_state_dict", "kmodel.pth",
                        "your own training of kModel(repeat_count=3, label=5): torch.save(model.state_dict())"),
           56_667_845, notes="beats are cut from the first channel (MIT-BIH: MLII) as Kachuee et al. cut them"),
    Preset("glucose_supervised", "EfficientNetV2-1D: fasting vs after glucose, per beat and per recording",
           "effnetv2_ecg_l_xxxs", GLUCOSE_BEAT, ["fast", "glucose"], "binary", "probabilities",
           WeightSource("torch_state_dict", "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth", GLUCOSE_REPOSITORY,
                        "065eea47d3c9145ca095990f55efe98ed5335c86655e3444349c5ccee1628025",
                        url=f"{GLUCOSE_RAW}/effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"),
           9_333, thresholds=0.5, notes="a recording is glucose when at least half of its beats are"),
    Preset("glucose_comparator", "EfficientNetV2-1D siamese comparator against an embedded reference bank",
           "effnetv2_comparator_v5", GLUCOSE_BEAT, ["fast", "glucose"], "comparator", "probabilities",
           WeightSource("torch_state_dict", "effnetv2_ecg_comparator_v5_l_xxxs_20240111_epoch100_4e-3.pth",
                        GLUCOSE_REPOSITORY, "4e0f9905f4815c5c34b033f22707cb9dc1703db1bf6d6b6b4959b5f55b912c9f",
                        url=f"{GLUCOSE_RAW}/effnetv2_ecg_comparator_v5_l_xxxs_20240111_epoch100_4e-3.pth"),
           9_717, thresholds=0.5,
           notes="export needs --data-root: the bank is 50 fast + 50 glucose beats drawn (seed 0) from the "
                 "training dates, as the evaluation draws it; a beat is fast when it is 'same' as more fast "
                 "than glucose references"),
    Preset("pulse2pulse_generator", "Pulse2Pulse DeepFake ECG generator (deepfake-ecg 1.1.2)",
           "pulse2pulse_generator", InputSpec("noise", 500, 5000, E18_LEADS, 8, normalisation="none", units="uV"),
           E18_LEADS, "generator", "values",
           WeightSource("torch_legacy", "g_stat.pt", "inside the deepfake-ecg package (used when --weights is not given)",
                        "676619cb3b81ed637e5ef93fabd591220d047bc4f5e199ffce930a3affb05cba"),
           6_617_728, output_units="uV",
           notes="input: uniform noise in [-1, 1], (5000, 8); output: 10-s ECGs in microvolts"),
]}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownPresetError(name)
    return PRESETS[name]


def preset_names() -> list[str]:
    return list(PRESETS)
