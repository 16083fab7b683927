"""Model registry: name -> builder function returning a Keras 3 functional model."""

from __future__ import annotations

from typing import Callable

import keras

from tf_ecg.errors import TfEcgInputError

ModelBuilder = Callable[..., keras.Model]

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
        _BUILDERS[name] = builder
        if base_model:
            _BASE_MODELS[name] = base_model
        return builder

    return decorator


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def model_builder(name: str) -> ModelBuilder:
    """The builder registered as ``name`` (its keyword arguments are a recipe's model options)."""
    if name not in _BUILDERS:
        raise UnknownModelError(name)
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
