"""Model registry: name -> builder function returning a Keras 3 functional model."""

from __future__ import annotations

from typing import Callable

import keras

ModelBuilder = Callable[..., keras.Model]

_BUILDERS: dict[str, ModelBuilder] = {}


class UnknownModelError(KeyError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"unknown model {name!r}; known models: {', '.join(model_names())}")

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return self.args[0]


def register(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: make ``builder`` available as ``build_model(name, ...)``."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return decorator


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def build_model(name: str, **options) -> keras.Model:
    """Build the registered model ``name``; the Keras model is named after it too.

    The name is what :func:`tf_ecg.load_original_weights` uses to find the weight map.
    """
    if name not in _BUILDERS:
        raise UnknownModelError(name)
    return _BUILDERS[name](**options)
