"""Recipes: one TOML file per system and task with every hyper-parameter of a run."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tf_ecg.errors import ECGDataError

TASKS = ("regression", "multiclass", "binary", "multilabel")


@dataclass
class Recipe:
    name: str
    data: dict
    model: dict
    training: dict
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.training["task"]


def load_recipe(path: str | Path, overrides: dict | None = None) -> Recipe:
    """Read a recipe; ``overrides`` such as {"training.epochs": 2} or
    {"model.options.base_weights": "model.hdf5"} replace single values."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path.with_suffix(".toml") if not path.is_dir() else path / "recipe.toml"
    if not path.is_file():
        raise ECGDataError(path, "recipe not found")
    try:
        content = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ECGDataError(path, f"invalid TOML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        table = content
        for section in sections:
            table = table.setdefault(section, {})
        table[key] = value
    for section in ("data", "model", "training"):
        if section not in content:
            raise ECGDataError(path, f"recipe has no [{section}] section")
    if content["training"].get("task") not in TASKS:
        raise ECGDataError(path, f"training.task must be one of {TASKS}")
    extra = {k: v for k, v in content.items() if k not in ("name", "data", "model", "training")}
    return Recipe(content.get("name", path.stem), content["data"], content["model"],
                  content["training"], path, extra)
