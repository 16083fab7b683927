"""Run under one Keras backend (``KERAS_BACKEND``): every registry model built, given the
weights the TensorFlow run saved, applied to the same fixed inputs; writes the outputs.

    python tests/backend_parity.py FOLDER   # tensorflow: writes <model>.weights.h5 and outputs
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


def inputs(model) -> list:
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    return [np.random.default_rng(i).normal(size=(2, *shape[1:])).astype("float32") for i, shape in enumerate(shapes)]


def main(folder: Path) -> None:
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
        y = keras.ops.convert_to_numpy(model(x if len(x) > 1 else x[0], training=False))
        np.save(folder / f"{name}.{backend}.npy", y)
        outputs[name] = list(y.shape)
    (folder / f"{backend}.json").write_text(json.dumps(outputs))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
