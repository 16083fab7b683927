"""Losses that Keras does not ship in the form the originals used."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_ecg")
class FocalLoss(keras.losses.Loss):
    """Multi-class focal loss on logits with per-class weights, as the MIT-BIH ResNeXt
    original: ``-alpha[y] * (1 - p_y)**gamma * log p_y``, averaged over the batch. As there,
    the modulating factor's p_y carries no gradient (it was computed from ``.data``).

    ``y_true``: integer class indices, shape (batch,) or (batch, 1).
    """

    def __init__(self, alpha=None, gamma: float = 2.0, name: str = "focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = None if alpha is None else [float(a) for a in alpha]
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        log_probabilities = ops.log_softmax(y_pred, axis=-1)
        log_pt = ops.take_along_axis(log_probabilities, labels[:, None], axis=-1)[:, 0]
        pt = ops.stop_gradient(ops.exp(log_pt))
        loss = -((1.0 - pt) ** self.gamma) * log_pt
        if self.alpha is not None:
            loss = loss * ops.take(ops.convert_to_tensor(self.alpha, dtype=loss.dtype), labels)
        return loss

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}
