"""Model registry: name -> builder function returning a Keras 3 functional model."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import keras

from tf_ecg.errors import TfEcgInputError

ModelBuilder = Callable[..., "keras.Model"]

# Every registered name and the module that registers it: the names are known without
# importing Keras (``tf-ecg models`` answers at once), a model's module is imported when it is built.
CATALOGUE = {
    "ribeiro_resnet": "ribeiro", "autoecg_single": "ribeiro", "autoecg_transfer": "ribeiro",
    "inception1d": "inception1d", "inception1d_combined": "inception1d",
    "pulse2pulse_generator": "pulse2pulse",
    "mitbih_resnext": "mitbih_resnext", "kaggle_conv1d_baseline": "kaggle_conv1d",
    "kachuee_residual_cnn": "kachuee_cnn",
    "loo_conv1d": "loo_conv1d",
    "effnetv2_ecg_l_xxxs": "effnetv2", "effnetv2_comparator_v5": "effnetv2",
}
_BUILDERS: dict[str, ModelBuilder] = {}
_BASE_MODELS: dict[str, str] = {}


class UnknownModelError(TfEcgInputError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(None, f"unknown model {name!r}; known models: {', '.join(model_names())}")


def register(name: str, base_model: str | None = None) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: make ``builder`` available as ``build_model(name, ...)``.

    ``base_model``: the registered network a transfer model is cut from; its builder then
    takes ``base=`` (a built, possibly pre-trained, base model)."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} is registered twice")
        if CATALOGUE.get(name) != builder.__module__.rsplit(".", 1)[-1]:
            raise ValueError(f"model {name!r} of {builder.__module__} is not in tf_ecg.registry.CATALOGUE")
        _BUILDERS[name] = builder
        if base_model:
            _BASE_MODELS[name] = base_model
        return builder

    return decorator


def model_names() -> list[str]:
    """The names :func:`tf_ecg.build_model` knows (``tf-ecg models``), sorted; Keras is not imported."""
    return sorted(CATALOGUE)


def model_builder(name: str) -> ModelBuilder:
    """The builder registered as ``name`` (its keyword arguments are a recipe's model options)."""
    if name not in CATALOGUE:
        raise UnknownModelError(name)
    if name not in _BUILDERS:
        importlib.import_module(f"tf_ecg.models.{CATALOGUE[name]}")
    return _BUILDERS[name]


def base_model_name(name: str) -> str | None:
    """The registered base network of transfer model ``name`` (None for other models)."""
    model_builder(name)
    return _BASE_MODELS.get(name)


def build_model(name: str, **options) -> keras.Model:
    """Build the registered model ``name``; the Keras model is named after it too.

    The name is what :func:`tf_ecg.load_original_weights` uses to find the weight map.
    """
    return model_builder(name)(**options)
