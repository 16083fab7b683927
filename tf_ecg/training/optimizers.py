"""Optimisers that Keras does not ship."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_ecg")
class AdaBound(keras.optimizers.Optimizer):
    """AdaBound (Luo et al., ICLR 2019), as the ``adabound`` PyTorch package (amsbound off):
    Adam whose per-element step size is clipped to bounds that converge to ``final_lr``,

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        step = lr sqrt(1 - b2^t) / (1 - b1^t)
        eta = clip(step / (sqrt(v) + eps), final (1 - 1/(gamma t + 1)), final (1 + 1/(gamma t)))
        theta -= eta * m

    with ``final = final_lr * lr / initial lr`` (a learning-rate schedule moves the bounds
    with it). Decoupled weight decay comes from the Keras base class (``weight_decay``).
    """

    def __init__(self, learning_rate=1e-3, final_lr: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 gamma: float = 1e-3, epsilon: float = 1e-8, name: str = "adabound", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.final_lr = final_lr
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.gamma = gamma
        self.epsilon = epsilon
        schedule = learning_rate if callable(learning_rate) else None
        self.initial_learning_rate = float(schedule(0) if schedule else learning_rate)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._first_moments = [self.add_variable_from_reference(v, "m") for v in variables]
        self._second_moments = [self.add_variable_from_reference(v, "v") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._first_moments[index], self._second_moments[index]
        self.assign(m, m * self.beta_1 + (1.0 - self.beta_1) * gradient)
        self.assign(v, v * self.beta_2 + (1.0 - self.beta_2) * ops.square(gradient))
        step_size = lr * ops.sqrt(1.0 - ops.power(self.beta_2, step)) / (1.0 - ops.power(self.beta_1, step))
        final = self.final_lr * lr / self.initial_learning_rate
        lower = final * (1.0 - 1.0 / (self.gamma * step + 1.0))
        upper = final * (1.0 + 1.0 / (self.gamma * step))
        eta = ops.clip(step_size / (ops.sqrt(v) + self.epsilon), lower, upper)
        self.assign_sub(variable, eta * m)

    def get_config(self):
        return {**super().get_config(), "final_lr": self.final_lr, "beta_1": self.beta_1, "beta_2": self.beta_2,
                "gamma": self.gamma, "epsilon": self.epsilon}
