"""What goes inside an exported SavedModel: preprocessing, output activation, reference bank.

The serving signature takes windows **at the model's sampling rate, in millivolts, leads in
the model's order** and nothing else: the graph scales millivolts to the units the model
was trained on, pads or crops a CODE exam to its 4,096 samples and min-max scales each
lead where training did. What TensorFlow cannot express (resampling, R-peak detection and
beat cutting) stays in ``tf-ecg predict`` and is named in the exported metadata.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tf_ecg.data.conventions import MILLIVOLTS_PER_UNIT
from tf_ecg.data.spec import InputSpec

MINMAX_EPSILON = 1e-8  # as tf_ecg.data.beats.minmax_scale: a flat lead maps to 0


@keras.saving.register_keras_serializable(package="tf_ecg")
class ServingPreprocessing(layers.Layer):
    """Millivolt windows at the model's rate -> the model's input (see the module doc)."""

    def __init__(self, spec: dict, **kwargs):
        super().__init__(**kwargs)
        self.spec = InputSpec(**spec)

    def get_config(self):
        return {**super().get_config(), "spec": self.spec.to_dict()}

    def call(self, x):
        spec = self.spec
        x = ops.cast(x, "float32")
        scale = 1.0 / MILLIVOLTS_PER_UNIT[spec.units]
        if scale != 1.0:
            if spec.kind == "glucose_beat":  # the last value is the RR interval in samples, not an amplitude
                x = ops.concatenate([x[:, :-1] * scale, x[:, -1:]], axis=1)
            else:
                x = x * scale
        if spec.kind == "code_exam":
            x = central_fit(x, spec.length)
        if spec.normalisation == "minmax_per_lead":
            low = ops.min(x, axis=1, keepdims=True)
            x = (x - low) / ops.maximum(ops.max(x, axis=1, keepdims=True) - low, MINMAX_EPSILON)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.spec.length, input_shape[-1])


def serving_windows(model_inputs: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Windows in the model's units (a training split's arrays) as the serving signature takes
    them, in millivolts (the inverse of the graph's unit scaling; min-max scaled arrays stay
    min-max scaled). Representative data for int8 calibration."""
    x = np.asarray(model_inputs, dtype=np.float32).copy()
    scale = MILLIVOLTS_PER_UNIT[spec.units]
    if spec.kind == "glucose_beat":  # the RR interval is not scaled by the graph
        x[:, :-1] *= scale
    else:
        x *= scale
    return x


def central_fit(x, length: int):
    """Exams of any length -> ``length`` samples: zero-padded on both sides (the extra sample
    on the right), or their central part; as ``tf_ecg.data.formats.code.to_code_format``."""
    if keras.backend.backend() != "tensorflow":  # JAX and PyTorch know the length when they trace
        have = x.shape[1]
        if have >= length:
            return x[:, (have - length) // 2:(have - length) // 2 + length]
        return ops.pad(x, [[0, 0], [(length - have) // 2, length - have - (length - have) // 2], [0, 0]])
    have = tf.shape(x)[1]

    def crop():
        start = (have - length) // 2
        return x[:, start:start + length]

    def pad():
        left = (length - have) // 2
        return tf.pad(x, [[0, 0], [left, length - have - left], [0, 0]])

    # a reshape, not ensure_shape: the static shape the model needs, in an op LiteRT can convert
    return tf.reshape(tf.cond(have >= length, crop, pad), [-1, length, x.shape[-1]])


def serving_input_shape(spec: InputSpec) -> tuple:
    return (None, spec.num_leads) if spec.kind == "code_exam" else (spec.length, spec.num_leads)


def serving_model(model: keras.Model, spec: InputSpec, task: str, outputs: str,
                  temperature: list[float] | None = None) -> keras.Model:
    """Preprocessing + ``model`` + the output activation of a model trained on logits; with a
    ``temperature`` (classifiers), the probabilities are temperature-scaled."""
    raw = keras.Input(serving_input_shape(spec), name="ecg_millivolts")
    y = _served_outputs(model(ServingPreprocessing(spec.to_dict(), name="preprocessing")(raw)), task, outputs,
                        temperature)
    return keras.Model(raw, y, name=f"{model.name}_serving")


def _served_outputs(y, task: str, outputs: str, temperature: list[float] | None):
    if temperature is not None:
        return TemperatureScaling(temperature, task, outputs, name="calibrated_probabilities")(y)
    if outputs == "logits" and task != "regression":
        return layers.Activation("softmax" if task == "multiclass" else "sigmoid", name="probabilities")(y)
    return y


def class_activation_endpoints(model: keras.Model, spec: InputSpec, task: str, outputs: str,
                               temperature: list[float] | None = None) -> dict[str, keras.Model]:
    """The serving model cut at its last convolutional feature map, for Grad-CAM: ``features``
    (mV windows -> the map (n, time, channels)) and ``head`` (the map -> served outputs). The
    cut is the last layer with a (time, channels) output that everything after it depends on
    alone; a model without one (no conv layer, or a skip around every candidate) gets none."""
    for layer in reversed(model.layers):
        try:
            feature_map = layer.output
        except (AttributeError, ValueError):  # a layer called more than once has no single output
            continue
        if len(feature_map.shape) != 3 or feature_map.shape[1] in (None, 1) or layer is model.layers[0]:
            continue
        try:
            rest = keras.Model(feature_map, model.outputs[0], name=f"{model.name}_after_{layer.name}")
        except ValueError:  # the outputs depend on more than this map (a skip around it)
            continue
        raw = keras.Input(serving_input_shape(spec), name="ecg_millivolts")
        before = keras.Model(model.inputs, feature_map, name=f"{model.name}_to_{layer.name}")
        features = keras.Model(raw, before(ServingPreprocessing(spec.to_dict(), name="preprocessing")(raw)),
                               name=f"{model.name}_features")
        mapped = keras.Input(tuple(feature_map.shape[1:]), name="feature_map")
        head = keras.Model(mapped, _served_outputs(rest(mapped), task, outputs, temperature), name=f"{model.name}_head")
        return {"features": features, "head": head}
    return {}


@keras.saving.register_keras_serializable(package="tf_ecg")
class TemperatureScaling(layers.Layer):
    """Calibrated probabilities: logits (or the logits recovered from probabilities) divided by
    the temperature (one, or one per sigmoid output), then softmax or sigmoid
    (``tf_ecg.evaluation.calibration``)."""

    def __init__(self, temperature, task: str, outputs: str, **kwargs):
        super().__init__(**kwargs)
        self.temperature, self.task, self.outputs = [float(t) for t in temperature], task, outputs

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "task": self.task, "outputs": self.outputs}

    def call(self, y):
        y = ops.cast(y, "float32")
        if self.outputs != "logits":
            p = ops.clip(y, 1e-7, 1 - 1e-7)
            y = ops.log(p) if self.task == "multiclass" else ops.log(p / (1 - p))
        y = y / ops.convert_to_tensor(np.asarray(self.temperature, "float32"))
        return ops.softmax(y, axis=-1) if self.task == "multiclass" else ops.sigmoid(y)


@keras.saving.register_keras_serializable(package="tf_ecg")
class ReferenceBankComparison(layers.Layer):
    """Each query embedding against every embedded reference beat: (n, classes, k)
    probabilities that the query and reference j of a class are *different*."""

    def __init__(self, head: keras.Model, references: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.head, self.bank_shape = head, tuple(references.shape)  # (classes, k, *embedding)
        self.references = self.add_weight(shape=self.bank_shape, trainable=False, name="reference_embeddings",
                                          initializer=keras.initializers.Constant(references))

    def call(self, queries):
        classes, k, *embedding = self.bank_shape
        n = ops.shape(queries)[0]
        flat = ops.reshape(self.references, (classes * k, *embedding))
        pairs_q = ops.repeat(queries, classes * k, axis=0)
        pairs_r = ops.tile(flat, (n, *([1] * len(embedding))))
        return ops.reshape(self.head([pairs_q, pairs_r]), (-1, classes, k))


def comparator_serving_model(comparator: keras.Model, spec: InputSpec, bank: tuple[np.ndarray, ...]) -> keras.Model:
    """The glucose comparator with its reference bank inside: beats (n, 384, 1) in
    millivolts -> (n, 2, k) P(different) against the k fast and k glucose reference beats.
    ``bank``: (fast beats, glucose beats), each (k, 384) in the model's microvolts."""
    encoder, head = comparator.get_layer("encoder"), comparator.get_layer("comparator_head")
    references = np.stack([encoder.predict(beats[..., None].astype("float32"), verbose=0) for beats in bank])
    raw = keras.Input(serving_input_shape(spec), name="ecg_millivolts")
    queries = encoder(ServingPreprocessing(spec.to_dict(), name="preprocessing")(raw))
    different = ReferenceBankComparison(head, references, name="reference_bank")(queries)
    return keras.Model(raw, different, name=f"{comparator.name}_serving")


OUTSIDE_THE_GRAPH = {
    "segment": ["resampling to the model's rate", "cutting consecutive windows"],
    "beat": ["resampling to the model's rate", "R-peak detection (neurokit2)", "cutting windows around R peaks"],
    "kaggle_beat": ["resampling to 125 Hz", "R-peak detection", "min-max scaling per 10-s window",
                    "cutting 1.2 x median RR beats, zero-padded to 187 (Kachuee et al.)"],
    "glucose_beat": ["dropping the first 1,546 samples", "R-peak detection (neurokit2 ecg_process)",
                     "cutting 383-sample beats, appending the RR interval in samples"],
    "code_exam": ["resampling to 400 Hz"],
}


def serving_contract(spec: InputSpec) -> dict:
    """The exported metadata's description of the serving signature and of who does what."""
    inside = []
    if MILLIVOLTS_PER_UNIT[spec.units] != 1.0:
        inside.append(f"millivolts -> {spec.units}" + (" (beat samples; the RR value is kept)"
                                                       if spec.kind == "glucose_beat" else ""))
    if spec.kind == "code_exam":
        inside.append(f"zero-padding (or central crop) to {spec.length} samples")
    if spec.normalisation == "minmax_per_lead":
        inside.append("per-lead min-max scaling to [0, 1]")
    return {"input": {"sampling_rate": spec.sampling_rate, "units": "mV",
                      "length": "any" if spec.kind == "code_exam" else spec.length,
                      "leads": spec.display_leads()},
            "in_graph": inside, "outside_graph": OUTSIDE_THE_GRAPH[spec.kind]}
