"""A recipe's model, compiled: its loss, optimiser and metrics, on any Keras backend.

No TensorFlow here (``benchmarks/gpu.py`` compiles the recipes where only JAX or PyTorch is
installed); the trainer (``tf_ecg.training.trainer``) adds the data, strategy and callbacks.
"""

from __future__ import annotations

from pathlib import Path

import keras

from tf_ecg.building import build_model
from tf_ecg.config import Recipe, TrainingConfig
from tf_ecg.errors import ECGDataError, RecipeError
from tf_ecg.training.losses import FocalLoss
from tf_ecg.training.optimizers import AdaBound

CUSTOM_OBJECTS = {"FocalLoss": FocalLoss, "AdaBound": AdaBound}  # recipe names of tf_ecg's own


def build_loss(training: TrainingConfig):
    """A loss by name ("mean_absolute_error") or a Loss class with options
    ({name = "SparseCategoricalCrossentropy", from_logits = true})."""
    loss = training.loss
    try:
        if isinstance(loss, str):
            return keras.losses.get(loss)
        options = {k: v for k, v in loss.items() if k != "name"}
        with keras.saving.CustomObjectScope(CUSTOM_OBJECTS):
            built = keras.losses.get({"class_name": loss["name"], "config": options})
    except (ValueError, TypeError, KeyError) as error:
        raise RecipeError(None, f"training.loss = {loss!r}: {error}") from None
    if not isinstance(built, keras.losses.Loss):
        # keras.losses.get resolves a function name and silently drops the options
        raise RecipeError(None, f"training.loss: {loss['name']!r} with options {options} must name a "
                                f"keras.losses.Loss class (e.g. 'SparseCategoricalCrossentropy')")
    return built


def build_optimizer(training: TrainingConfig) -> keras.optimizers.Optimizer:
    config = dict(training.optimizer)
    name = config.pop("name", None)
    try:
        with keras.saving.CustomObjectScope(CUSTOM_OBJECTS):
            return keras.optimizers.get({"class_name": name, "config": config})
    except (ValueError, TypeError) as error:
        raise RecipeError(None, f"training.optimizer = {training.optimizer!r}: {error}") from None


L1_LOSSES = ("mean_absolute_error", "mae", "MeanAbsoluteError")


def training_metrics(training: TrainingConfig) -> list:
    """Metrics Keras tracks per batch; the task metrics (macro-F1, macro-AUC, R2) are computed
    on the whole validation set by :class:`ValidationReport`."""
    if training.task == "regression":
        metrics = [keras.metrics.RootMeanSquaredError(name="rmse")]
        if training.loss not in L1_LOSSES:
            metrics.insert(0, keras.metrics.MeanAbsoluteError(name="mae"))
        return metrics
    if training.task == "multiclass":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [keras.metrics.BinaryAccuracy(name="accuracy")]


def copy_matching_weights(model: keras.Model, source_file: str | Path) -> list[str]:
    """Weights of a trained ``.keras`` model copied into layers of the same name and shapes
    (transfer learning); returns the names of the layers left as they were."""
    source_file = Path(source_file)
    if not source_file.is_file():
        raise ECGDataError(source_file, "initial weights not found")
    source = {layer.name: layer for layer in keras.models.load_model(source_file, compile=False).layers}
    skipped = []
    for layer in model.layers:
        if not layer.weights:
            continue
        donor = source.get(layer.name)
        if donor is None or [w.shape for w in donor.weights] != [w.shape for w in layer.weights]:
            skipped.append(layer.name)
            continue
        for target, value in zip(layer.weights, donor.weights):
            target.assign(value)  # by variable, so frozen γ/β (non-trainable) are copied too
    return skipped


def compile_model(recipe: Recipe, num_outputs: int, example_shape: tuple | None = None,
                  jit_compile="auto") -> keras.Model:
    """The recipe's model, compiled; ``example_shape``: one input example's shape in the data,
    checked against every model input (a window of 170 samples for a 160-sample model is
    a recipe mistake, not a Keras error). Called inside ``runtime_context``: under mixed
    precision the outputs are cast to float32, and BatchNorm is synchronised if asked."""
    model = float32_outputs(build_model(recipe.model.name, **recipe.model.options))
    if recipe.runtime.sync_batch_norm:
        synchronise_batch_norm(model)
    if example_shape is not None:
        for shape in (model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]):
            if any(m is not None and m != d for m, d in zip(shape[1:], example_shape)) or len(shape) - 1 != len(example_shape):
                raise RecipeError(recipe.path, f"model {recipe.model.name} takes inputs of shape {tuple(shape[1:])}, "
                                               f"the data are {tuple(example_shape)}: set model.options to match")
    if recipe.model.initial_weights:
        skipped = copy_matching_weights(model, recipe.model.initial_weights)
        print(f"initial weights from {recipe.model.initial_weights}; left fresh: {skipped}")
    if model.output_shape[-1] != num_outputs:
        raise RecipeError(recipe.path, f"model {recipe.model.name} has {model.output_shape[-1]} outputs, "
                                       f"the data has {num_outputs}: set model.options")
    model.compile(optimizer=build_optimizer(recipe.training), loss=build_loss(recipe.training),
                  metrics=training_metrics(recipe.training), jit_compile=jit_compile)
    return model


def float32_outputs(model: keras.Model) -> keras.Model:
    """Under mixed precision, the model with its outputs cast to float32 (losses, metrics
    and served outputs stay float32); the model itself otherwise."""
    if all(output.dtype == "float32" for output in model.outputs):
        return model
    outputs = [keras.layers.Activation("linear", dtype="float32", name=f"float32_{i}")(output)
               for i, output in enumerate(model.outputs)]
    return keras.Model(model.inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def synchronise_batch_norm(model: keras.Model) -> int:
    """BatchNorm statistics over the global batch (all replicas) in training; the count set."""
    count = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
