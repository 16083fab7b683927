"""Run under one Keras backend (``KERAS_BACKEND``): every registry model built, given the
weights the TensorFlow run saved, applied to the same fixed inputs; writes the outputs.

    python tests/backend_parity.py FOLDER [--steps [MODEL ...]]   # tensorflow: writes <model>.weights.h5

Also the attributions (integrated gradients, Grad-CAM) of the Kaggle peer's served outputs.
``--steps``: also the losses of two training steps per model (of the models named, or of
every model) and of the ResNeXt recipe's focal loss with AdaBound.
"""

import json
import sys
from pathlib import Path

import numpy as np

import tf_ecg  # noqa: F401  (the TensorFlow backend's CPU kernels, where it is the backend)
import keras
from tf_ecg.building import build_model
from tf_ecg.registry import model_names

OPTIONS = {"loo_conv1d": {"num_classes": 5}}


def inputs(model, batch: int = 8) -> list:
    """A fixed batch (8: batch statistics over two examples are mostly rounding)."""
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    return [np.random.default_rng(i).normal(size=(batch, *shape[1:])).astype("float32") for i, shape in enumerate(shapes)]


def main(folder: Path, steps: list[str]) -> None:
    backend = keras.backend.backend()
    outputs = {}
    for name in model_names():
        keras.utils.set_random_seed(0)
        model = build_model(name, **OPTIONS.get(name, {}))
        weights = folder / f"{name}.weights.h5"
        if backend == "tensorflow":
            model.save_weights(weights)
        else:
            model.load_weights(weights)
        x = inputs(model)
        x = x if len(x) > 1 else x[0]
        y = keras.ops.convert_to_numpy(model(x, training=False))
        np.save(folder / f"{name}.{backend}.npy", y)
        outputs[name] = {"shape": list(y.shape)}
        if name in steps:
            try:  # one model's failing step is a result for that model, not the end of the run
                outputs[name]["losses"] = training_losses(model, x, y)
            except Exception as error:  # noqa: BLE001
                outputs[name]["error"] = f"{type(error).__name__}: {error}"[:500]
    np.save(folder / f"attributions.{backend}.npy", attributions(folder))
    if steps:
        outputs["focal_adabound"] = focal_adabound_losses(folder, backend)
    (folder / f"{backend}.json").write_text(json.dumps(outputs))


def attributions(folder: Path) -> np.ndarray:
    """Integrated gradients and Grad-CAM of the Kaggle peer's probabilities, served from
    millivolts (the path ``tf-ecg explain`` and the training summaries take), weights as above."""
    from tf_ecg.data.spec import InputSpec
    from tf_ecg.explain import grad_cam, integrated_gradients
    from tf_ecg.serving import class_activation_endpoints, serving_model

    model = build_model("kaggle_conv1d_baseline")
    model.load_weights(folder / "kaggle_conv1d_baseline.weights.h5")
    spec = InputSpec("kaggle_beat", 125, 187, None, 1)
    windows = np.random.default_rng(1).normal(size=(3, 187, 1)).astype("float32")
    targets = np.array([0, 2, 4])
    endpoints = class_activation_endpoints(model, spec, "multiclass", "logits")
    return np.stack([integrated_gradients(serving_model(model, spec, "multiclass", "logits"), windows, targets, 8),
                     grad_cam(endpoints["features"], endpoints["head"], windows, targets)])


def without_dropout(model):
    """Dropout draws its masks from each backend's own generator: off, so that steps compare."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


# The two networks whose every block batch-normalises (untrained statistics: the training-mode
# outputs are far from the target) take steps 100x smaller, or one step of 1e-2 overshoots into
# a region where float32's last digits decide the next loss.
STEP_LEARNING_RATE = {"inception1d": 1e-4, "mitbih_resnext": 1e-4}


def training_losses(model, x, y) -> list[float]:
    """The loss of two training steps (mean squared error towards half the outputs, plain SGD:
    an update proportional to the gradient, where Adam's m / sqrt(v) would blow float noise in
    near-zero gradients up to full steps): the first is the training-mode forward pass, the
    second follows one update."""
    learning_rate = STEP_LEARNING_RATE.get(model.name, 1e-2)
    without_dropout(model).compile(loss="mean_squared_error", optimizer=keras.optimizers.SGD(learning_rate))
    target = np.asarray(y) * 0.5
    return [float(model.train_on_batch(x, target)) for _ in range(2)]


def focal_adabound_losses(folder: Path, backend: str) -> list[float]:
    """The ResNeXt recipe's focal loss and AdaBound, three steps on the Kaggle peer's network."""
    from tf_ecg.training.losses import FocalLoss
    from tf_ecg.training.optimizers import AdaBound

    keras.utils.set_random_seed(0)
    model = build_model("kaggle_conv1d_baseline")
    weights = folder / "focal.weights.h5"
    model.save_weights(weights) if backend == "tensorflow" else model.load_weights(weights)
    without_dropout(model).compile(loss=FocalLoss(alpha=[0.15, 0.75, 0.65, 0.75, 0.25], gamma=2.0),
                                   optimizer=AdaBound(learning_rate=1e-3))
    x = np.random.default_rng(0).normal(size=(16, 187, 1)).astype("float32")
    return [float(model.train_on_batch(x, np.arange(16) % 5)) for _ in range(3)]


if __name__ == "__main__":
    arguments = sys.argv[2:]
    stepped = arguments[arguments.index("--steps") + 1:] or model_names() if "--steps" in arguments else []
    main(Path(sys.argv[1]), stepped)
