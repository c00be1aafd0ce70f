"""Callbacks of the training programs: best-model saving by a validation saliency metric (atomic
.keras writes of the wrapped network) and a NaN guard that names the epoch, step and batch."""

from __future__ import annotations

import math

import keras

from fastsal_tf.common.files import atomic_path


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


class StopOnNaN(keras.callbacks.Callback):
    """Raises TrainingDivergedError at the first non-finite training loss, naming where it happened;
    nothing is saved after it."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise TrainingDivergedError(f"the training loss became {float(loss)} at epoch {self.epoch + 1}, batch "
                                        f"{batch + 1} (optimizer step {self.step}); lower the learning rate or check "
                                        "the inputs of that batch")


def save_atomically(network, path):
    """Saves a Keras model to `path` (.keras) through a temporary file, so readers never see half a file."""
    with atomic_path(path) as temp:
        network.save(temp)


class SaveBestNetwork(keras.callbacks.Callback):
    """Saves the trainer's wrapped network (`model.network` or `model.student`) to `path` whenever the
    logged `monitor` (e.g. "val_cc") improves; mode "max" or "min" ("auto": min for kld / loss)."""

    def __init__(self, path, monitor="val_cc", mode="auto"):
        super().__init__()
        self.path = path
        self.monitor = monitor
        if mode == "auto":
            mode = "min" if any(k in monitor for k in ("kld", "loss")) else "max"
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"cannot select the best model by {self.monitor!r}: the logs have {sorted(logs or {})}")
        value = float(value)
        better = value < self.best if self.mode == "min" else value > self.best
        if better and math.isfinite(value):
            self.best = value
            network = getattr(self.model, "network", None) or self.model.student
            save_atomically(network, self.path)
