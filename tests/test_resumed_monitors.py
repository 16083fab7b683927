"""A resumed run's early stopping, best-model checkpoint and learning-rate reduction go on from
the epochs it had finished: Keras keeps none of their state across fit calls."""

import keras
import numpy as np
import pytest

from tf_ecg.training.callbacks import PatienceSpent, ResumedMonitors


class ForcedValLoss(keras.callbacks.Callback):
    """Sets this epoch's val_loss before the monitors read it (they share the logs)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.value


def _fit_one_epoch(history, value, monitors):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    model.fit(x, x[:, :1], validation_data=(x, x[:, :1]), epochs=len(history) + 1, initial_epoch=len(history),
              verbose=0, callbacks=[ForcedValLoss(value), *monitors, ResumedMonitors(history, monitors)])
    return model


def test_the_replayed_history_sets_each_monitor_as_an_uninterrupted_run_would():
    stopping = keras.callbacks.EarlyStopping(patience=3)
    reduction = keras.callbacks.ReduceLROnPlateau(patience=2, cooldown=1, min_delta=0)
    checkpoint = keras.callbacks.ModelCheckpoint("unused.keras", save_best_only=True)
    monitors = [checkpoint, stopping, reduction]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    for monitor in monitors:
        monitor.set_model(model)
        monitor.on_train_begin()  # Keras resets them here; the replay comes after
    ResumedMonitors([5.0, 4.0, 4.5, 4.6], monitors).on_train_begin()
    assert checkpoint.best == stopping.best == reduction.best == 4.0
    assert (stopping.wait, stopping.best_epoch) == (2, 1)
    assert (reduction.wait, reduction.cooldown_counter) == (0, 1)  # reduced after epoch 3, cooling down

    with pytest.raises(PatienceSpent, match="3 epochs after epoch 1 "):
        ResumedMonitors([5.0, 4.0, 4.5, 4.6, 4.7], [stopping]).on_train_begin()


@pytest.mark.parametrize("value, saved", [(0.9, False), (0.4, True)])
def test_a_resumed_checkpoint_keeps_the_best_model_unless_the_epoch_beats_it(tmp_path, value, saved):
    best = tmp_path / "best.keras"
    _fit_one_epoch([1.0, 0.5], value, [keras.callbacks.ModelCheckpoint(str(best), save_best_only=True)])
    assert best.is_file() == saved


def test_a_resumed_early_stopping_counts_the_epochs_before_the_interruption():
    stopping = keras.callbacks.EarlyStopping(patience=2)
    model = _fit_one_epoch([1.0, 0.5, 0.6], 0.7, [stopping])
    assert model.stop_training and stopping.wait == 2 and stopping.best == 0.5


def test_a_run_whose_patience_ran_out_ends_with_the_checkpoints_best_weights(tmp_path):
    """restore_best_weights (e18's recipes): the weights it would have restored are the ones
    best.keras holds, as an uninterrupted run would end."""
    best = tmp_path / "best.keras"
    kept = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    kept.set_weights([np.full_like(w, 0.5) for w in kept.get_weights()])
    kept.save(best)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    monitors = [keras.callbacks.ModelCheckpoint(str(best), save_best_only=True),
                keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)]
    resumed = ResumedMonitors([1.0, 0.5, 0.6, 0.7], monitors)
    for callback in (*monitors, resumed):
        callback.set_model(model)
    with pytest.raises(PatienceSpent):
        resumed.on_train_begin()
    assert all(np.all(w == 0.5) for w in model.get_weights())


def test_a_monitor_whose_direction_keras_cannot_tell_yet_asks_for_the_mode():
    from tf_ecg.errors import RecipeError

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    stopping = keras.callbacks.EarlyStopping(monitor="val_macro_auc")
    resumed = ResumedMonitors([0.6, 0.7], [stopping])
    for callback in (stopping, resumed):
        callback.set_model(model)
    with pytest.raises(RecipeError, match="set training.monitor_mode"):
        resumed.on_train_begin()
