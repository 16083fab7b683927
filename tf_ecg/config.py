"""Typed, strict recipes: one TOML file per system and task with every setting of a run.

A recipe has ``name`` and the sections ``[data]``, ``[model]``, ``[training]`` and
``[runtime]`` (or, for the leave-one-patient-out protocol, ``[leave_one_out]``). Every key
is checked when the file is read: an unknown or misspelt key, a value of the wrong type
or a missing required key is a :class:`RecipeError` naming the key and the file, so a
typo never silently falls back to a default.

``[data]`` keys are the named source's options (its function signature is the schema);
``[model]`` ``options`` are the registered builder's keyword arguments. The resolved
recipe (the file plus every override) is what a run directory records as ``recipe.toml``.
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf_ecg.errors import RecipeError

TASKS = ("regression", "multiclass", "binary", "multilabel")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    options: dict = field(default_factory=dict)
    initial_weights: str = ""     # a trained .keras whose matching layers start the model (transfer)


@dataclass(frozen=True)
class TrainingConfig:
    task: str
    loss: str | dict              # a Keras loss name, or {name = "<Loss class>", ...options}
    optimizer: dict               # {name = "adam", learning_rate = ..., ...options}; learning_rate: a
                                  # number or a per-step Keras schedule {module, class_name, config}
    batch_size: int               # global batch size
    epochs: int
    outputs: str = "logits"       # what the model emits: "logits", "probabilities" or "values"
    schedule: dict | None = None  # per-epoch learning rate: exponential, cosine, step_after
    keep: str = "best"            # the model scored and exported: "best" (monitored) or "final"
    monitor: str = "val_loss"
    monitor_mode: str = "auto"
    early_stopping: dict | None = None
    reduce_lr_on_plateau: dict | None = None
    output_bias: str = ""         # "train_median": the output bias starts at the targets' median
    thresholds: float | list = 0.5
    pairs: str = ""               # "halves": (reference, query) pairs of the comparator
    drop_remainder: bool = False
    image_every: int = 1          # epochs between TensorBoard evaluation figures
    batch_norm_statistics: str = "moving_average"  # or "recompute": exact statistics at each epoch end
    seed: int = 0


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how a run executes (``tf_ecg.training.distribution``). Batch sizes in
    [training] are global: each of R replicas gets batch_size / R examples per step."""
    strategy: str = "auto"              # auto: mirrored over 2+ GPUs (or --cpu-replicas), else one device;
                                        # multi-worker: one process per host, TF_CONFIG
    mixed_precision: str = "float32"    # mixed_float16 / mixed_bfloat16: outputs and losses stay float32
    jit_compile: str = "auto"           # XLA: "auto" (Keras: on with a GPU), "on", "off"
    cpu_replicas: int = 1               # split the host CPU into N logical devices (multi-device on a laptop)
    sync_batch_norm: bool = False       # BatchNorm statistics over the global batch instead of each replica's
    learning_rate_scaling: str = "none"  # "linear": learning rate x replicas (never done silently)


@dataclass(frozen=True)
class LeaveOneOutConfig:
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    fine_tune_epochs: int = 10
    transfer: bool = True
    output_activation: str = ""   # "relu" reproduces the original's ReLU logits (a bug)
    test_scaling: str = "own"     # "own" (original) or "train": min/max of the training data
    seed: int = 0


CHOICES = {
    ("training", "task"): TASKS,
    ("training", "outputs"): ("logits", "probabilities", "values"),
    ("training", "keep"): ("best", "final"),
    ("training", "monitor_mode"): ("auto", "min", "max"),
    ("training", "output_bias"): ("", "train_median"),
    ("training", "pairs"): ("", "halves"),
    ("training", "batch_norm_statistics"): ("moving_average", "recompute"),
    ("runtime", "strategy"): ("auto", "one-device", "mirrored", "multi-worker"),
    ("runtime", "mixed_precision"): ("float32", "mixed_float16", "mixed_bfloat16"),
    ("runtime", "jit_compile"): ("auto", "on", "off"),
    ("runtime", "learning_rate_scaling"): ("none", "linear"),
    ("leave_one_out", "output_activation"): ("", "relu"),
    ("leave_one_out", "test_scaling"): ("own", "train"),
}
POSITIVE = {("training", "batch_size"), ("training", "epochs"), ("training", "image_every"), ("runtime", "cpu_replicas"),
            ("leave_one_out", "epochs"), ("leave_one_out", "batch_size")}
NON_NEGATIVE = {("leave_one_out", "fine_tune_epochs")}


@dataclass
class Recipe:
    name: str
    data: dict                    # {"source": name, **the source's options}
    model: ModelConfig
    training: TrainingConfig
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    path: Path | None = None
    overrides: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.training.task

    def to_dict(self) -> dict:
        """The resolved recipe as TOML-ready tables (defaults filled in)."""
        return {"name": self.name, "data": dict(self.data), "model": _asdict(self.model),
                "training": _asdict(self.training), "runtime": _asdict(self.runtime)}

    def to_toml(self) -> str:
        header = f"# resolved recipe: {self.path}" + (f" with {self.overrides}" if self.overrides else "")
        return header + "\n" + dumps_toml(self.to_dict())


@dataclass
class LeaveOneOutRecipe:
    name: str
    leave_one_out: LeaveOneOutConfig
    path: Path | None = None
    overrides: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "leave_one_out": _asdict(self.leave_one_out)}


def _asdict(config) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if getattr(config, f.name) is not None}


# ---------------------------------------------------------------- reading and overriding

def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` with a TOML value (``3``, ``1e-3``, ``true``, ``[1, 2]``,
    ``{a = 1}``, ``"text"``); a bare word that is not TOML is taken as a string."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise RecipeError(None, f"--set {text!r}: expected SECTION.KEY=VALUE")
    if "." not in key:
        raise RecipeError(None, f"--set {text!r}: the key needs its section, e.g. training.{key}")
    try:
        return key, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        if value and all(ch.isalnum() or ch in "_-./:" for ch in value) and not value[0].isdigit():
            return key, value  # a bare word: a name or a path
        raise RecipeError(None, f"--set {text!r}: {value!r} is not a TOML value "
                                f"(quote strings: {key}=\"...\")") from None


def apply_overrides(content: dict, overrides: dict, path) -> dict:
    for dotted, value in overrides.items():
        *sections, key = dotted.split(".")
        table = content
        for section in sections:
            table = table.setdefault(section, {})
            if not isinstance(table, dict):
                raise RecipeError(path, f"override {dotted!r}: {section!r} is not a table")
        table[key] = value
    return content


def read_toml(path: Path) -> dict:
    if not path.is_file():
        raise RecipeError(path, "recipe not found")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(path, f"invalid TOML ({exc})") from None


def resolve_path(path: str | Path) -> Path:
    """A recipe file, a run directory (its ``recipe.toml``), or a name in the packaged recipes."""
    path = Path(path)
    if path.is_dir():
        return path / "recipe.toml"
    if not path.exists() and not path.suffix:
        packaged = recipes_dir() / f"{path.name}.toml"
        return packaged if packaged.is_file() else path.with_suffix(".toml")
    return path


def recipes_dir() -> Path:
    """The recipes shipped inside the package (``models/`` in a checkout is the same folder)."""
    return Path(__file__).resolve().parent / "recipes"


def load_recipe(path: str | Path, overrides: dict | None = None) -> Recipe:
    """Read and check a recipe; ``overrides`` such as {"training.epochs": 2} or
    {"model.options.base_weights": "model.hdf5"} replace single values first."""
    path = resolve_path(path)
    overrides = dict(overrides or {})
    content = apply_overrides(read_toml(path), overrides, path)
    if "leave_one_out" in content:
        raise RecipeError(path, "a leave-one-out recipe: run it with `tf-ecg leave-one-out --recipe`")
    _only_keys(content, {"name", "data", "model", "training", "runtime"}, path, "")
    for section in ("data", "model", "training"):
        if not isinstance(content.get(section), dict):
            raise RecipeError(path, f"recipe has no [{section}] section")
    name = _typed(content.get("name", path.stem), str, path, "name")
    model = _section(ModelConfig, content["model"], path, "model")
    model = dataclasses.replace(model, options=_builder_options(model, path))
    training = _section(TrainingConfig, content["training"], path, "training")
    _check_schedule(training.schedule, path)
    for key, value in training.optimizer.items():
        check_range(key, value, path, f"training.optimizer.{key}")
    runtime = _section(RuntimeConfig, content.get("runtime", {}), path, "runtime")
    _check_step_schedule(training, runtime, path)
    if training.pairs and training.batch_norm_statistics == "recompute":
        raise RecipeError(path, "training.batch_norm_statistics = \"recompute\" needs single-input batches; "
                                "it does not apply to pair training (training.pairs)")
    return Recipe(name, _data_options(content["data"], path), model, training, runtime, path, overrides)


def load_leave_one_out_recipe(path: str | Path, overrides: dict | None = None) -> LeaveOneOutRecipe:
    path = resolve_path(path)
    overrides = dict(overrides or {})
    content = apply_overrides(read_toml(path), overrides, path)
    _only_keys(content, {"name", "leave_one_out"}, path, "")
    config = _section(LeaveOneOutConfig, content.get("leave_one_out", {}), path, "leave_one_out")
    return LeaveOneOutRecipe(_typed(content.get("name", path.stem), str, path, "name"), config, path, overrides)


# ---------------------------------------------------------------- checking

def _only_keys(table: dict, known, path, section: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        where = f"[{section}] " if section else ""
        hints = [_closest(key, known) for key in unknown]
        hint = "; ".join(f"did you mean {h!r} for {k!r}?" for k, h in zip(unknown, hints) if h)
        raise RecipeError(path, f"unknown {where}key(s) {unknown}" + (f" ({hint})" if hint else "")
                                + f"; known: {sorted(known)}")


def _closest(key: str, known) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


def _section(config_class, table, path, section: str):
    if not isinstance(table, dict):
        raise RecipeError(path, f"[{section}] must be a table")
    hints = typing.get_type_hints(config_class)
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    _only_keys(table, fields, path, section)
    values = {}
    for name, spec in fields.items():
        if name not in table:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise RecipeError(path, f"[{section}] is missing the required key {name!r}")
            continue
        values[name] = _checked(table[name], hints[name], path, f"{section}.{name}")
    return config_class(**values)


def _checked(value, annotation, path, key: str):
    section, _, name = key.partition(".")
    value = _typed(value, annotation, path, key)
    choices = CHOICES.get((section, name))
    if choices is not None and value not in choices:
        raise RecipeError(path, f"{key} = {value!r}: must be one of {list(choices)}")
    if (section, name) in POSITIVE and value <= 0:
        raise RecipeError(path, f"{key} = {value!r}: must be a positive integer")
    if (section, name) in NON_NEGATIVE and value < 0:
        raise RecipeError(path, f"{key} = {value!r}: must be 0 or more")
    return value


def _typed(value, annotation, path, key: str):
    """``value`` if it matches ``annotation`` (ints pass as floats; lists as tuples)."""
    if _matches(value, annotation):
        return float(value) if annotation is float and isinstance(value, int) else value
    raise RecipeError(path, f"{key} = {value!r}: expected {_describe(annotation)}, got {type(value).__name__}")


def _matches(value, annotation) -> bool:
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # an annotation we do not check (e.g. a callable)


def _describe(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if origin in (list, tuple) or annotation in (list, tuple):
        return "a list"
    if annotation is type(None):
        return "nothing"
    return getattr(annotation, "__name__", str(annotation))


def check_options(function, options: dict, path, section: str, skip=(), fill_defaults: bool = False) -> dict:
    """``options`` checked against ``function``'s keyword arguments: names, types (from its
    annotations; an unannotated argument takes the type of its default) and required ones.
    ``fill_defaults``: add the defaults of the arguments not given (a resolved record)."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):
        hints = {}
    parameters = {name: p for name, p in signature.parameters.items()
                  if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    _only_keys(options, parameters, path, section)
    checked = {}
    for name, parameter in parameters.items():
        if name not in options:
            if parameter.default is inspect.Parameter.empty:
                raise RecipeError(path, f"[{section}] is missing the required key {name!r}")
            if fill_defaults and parameter.default is not None:
                default = parameter.default
                checked[name] = list(default) if isinstance(default, (range, tuple)) else default
            continue
        annotation = hints.get(name, inspect.Parameter.empty)
        if annotation is inspect.Parameter.empty and parameter.default not in (None, inspect.Parameter.empty):
            annotation = type(parameter.default) if not isinstance(parameter.default, (range, tuple)) else list
        checked[name] = _typed(options[name], annotation, path, f"{section}.{name}")
        check_range(name, checked[name], path, f"{section}.{name}")
    return checked


def check_range(name: str, value, path, key: str) -> None:
    """Numbers whose name says their range: ``*_fraction`` in [0, 1), ``*sampling_rate`` and
    ``learning_rate`` above 0, ``n_*`` counts from 1, ``*seed`` from 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    rules = ((name.endswith("fraction"), 0 <= value < 1, "in [0, 1)"),
             (name.endswith("sampling_rate") or name == "learning_rate", value > 0, "above 0"),
             (name.startswith("n_"), value >= 1, "at least 1"),
             (name.endswith("seed"), value >= 0, "at least 0"))
    for applies, holds, expected in rules:
        if applies and not holds:
            raise RecipeError(path, f"{key} = {value!r}: must be {expected}")


SCHEDULES = {"exponential": ({"decay_rate"}, set()), "cosine": ({"period"}, {"min_learning_rate"}),
             "step_after": ({"hold", "decay_rate"}, set())}


def initial_learning_rate(optimizer: dict) -> float:
    """The learning rate at the first step: the optimizer's number, or its per-step Keras
    schedule's ``initial_learning_rate``."""
    rate = optimizer.get("learning_rate", 1e-3)
    return rate["config"]["initial_learning_rate"] if isinstance(rate, dict) else rate


def _check_step_schedule(training: TrainingConfig, runtime: RuntimeConfig, path) -> None:
    """A per-step schedule (``optimizer.learning_rate`` a table) is one learning-rate policy:
    not combined with another, and not scaled behind the recipe's back."""
    rate = training.optimizer.get("learning_rate")
    if not isinstance(rate, dict):
        return
    if not isinstance(rate.get("config"), dict) or "initial_learning_rate" not in rate["config"]:
        raise RecipeError(path, "training.optimizer.learning_rate: a schedule table needs "
                                "config.initial_learning_rate (e.g. Keras' ExponentialDecay)")
    check_range("learning_rate", rate["config"]["initial_learning_rate"], path,
                "training.optimizer.learning_rate.config.initial_learning_rate")
    others = [key for key, value in (("training.schedule", training.schedule),
                                     ("training.reduce_lr_on_plateau", training.reduce_lr_on_plateau),
                                     ("runtime.learning_rate_scaling", runtime.learning_rate_scaling != "none"))
              if value]
    if others:
        raise RecipeError(path, f"training.optimizer.learning_rate is a per-step schedule: {', '.join(others)} "
                                "would change it too; use one learning-rate policy")


def _check_schedule(schedule: dict | None, path) -> None:
    if schedule is None:
        return
    kind = schedule.get("name")
    if kind not in SCHEDULES:
        raise RecipeError(path, f"training.schedule.name = {kind!r}: must be one of {sorted(SCHEDULES)}")
    required, optional = SCHEDULES[kind]
    _only_keys(schedule, required | optional | {"name"}, path, "training.schedule")
    for key in sorted(required):
        if key not in schedule:
            raise RecipeError(path, f"training.schedule ({kind}) is missing the required key {key!r}")
        _typed(schedule[key], float, path, f"training.schedule.{key}")


def _data_options(table: dict, path) -> dict:
    from tf_ecg.data.sources import source_function

    source = table.get("source")
    if not isinstance(source, str):
        raise RecipeError(path, "[data] needs source = \"<name>\" (see tf_ecg.data.sources.source_names())")
    try:
        function = source_function(source)
    except KeyError as error:
        raise RecipeError(path, f"data.source: {error.args[0]}") from None
    options = {k: v for k, v in table.items() if k != "source"}
    return {"source": source, **check_options(function, options, path, "data", skip=("data_root",),
                                              fill_defaults=True)}


def _builder_options(model: ModelConfig, path) -> dict:
    from tf_ecg.registry import UnknownModelError, base_model_name, model_builder

    try:
        builder = model_builder(model.name)
    except UnknownModelError as error:
        raise RecipeError(path, f"model.name: {error}") from None
    options = dict(model.options)
    base_weights = options.pop("base_weights", None)
    checked = check_options(builder, options, path, "model.options", skip=("base",))  # base: a built model
    if base_weights is not None:
        if not base_model_name(model.name):
            raise RecipeError(path, f"model.options.base_weights: {model.name!r} has no base network")
        checked["base_weights"] = _typed(base_weights, str, path, "model.options.base_weights")
    return checked


# ---------------------------------------------------------------- writing

def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple, range)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def dumps_toml(content: dict) -> str:
    """Top-level values, then one table per section (values inline): enough for recipes."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in content.items() if not isinstance(v, dict)]
    for section, table in content.items():
        if isinstance(table, dict):
            lines += ["", f"[{section}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved recipes."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += differences(a, b, f"{prefix}{key}.")
        elif _normal(a) != _normal(b):
            keys.append(f"{prefix}{key}")
    return keys


def _normal(value):
    if isinstance(value, (list, tuple, range)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value
