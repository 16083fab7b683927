"""``tf_ecg.build_model``: the registry's builders, plus the original weights of a transfer
model's base network (this module sits above both ``models`` and ``weights``)."""

from __future__ import annotations

from pathlib import Path

import keras

from tf_ecg.registry import base_model_name, model_builder
from tf_ecg.weights import load_original_weights


def build_model(name: str, base_weights: str | Path | None = None, **options) -> keras.Model:
    """Build the registered model ``name`` with ``options``.

    ``base_weights`` (transfer models only, e.g. ``autoecg_transfer``): an original's weight
    file (Ribeiro's ``model.hdf5``) loaded into the base network before it is cut."""
    builder = model_builder(name)
    if base_weights:
        base_name = base_model_name(name)
        if base_name is None:
            raise TypeError(f"model {name!r} has no base network: base_weights does not apply")
        options["base"] = load_original_weights(model_builder(base_name)(), base_weights)
    return builder(**options)
