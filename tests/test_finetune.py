"""Fine-tuning end to end on the tiny OSIE fixture: model.fit, checkpoints, resume, NaN guard,
objectives, and MirroredStrategy parity."""

import csv
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf.models import build_fastsal
from fastsal_tf.train.callbacks import StopOnNaN, TrainingDivergedError
from fastsal_tf.train.finetune import FinetuneConfig, datasets, finetune
from fastsal_tf.train.objectives import Objective
from fastsal_tf.train.setup import freeze, learning_rate


def config(test_data, tmp_path, **overrides):
    osie = test_data / "datasets" / "osie"
    settings = dict(out_dir=str(tmp_path / "run"), data_dir=str(osie), split_file=str(osie / "osie_split.json"),
                    size=(64, 64), init="none", epochs=2, batch_size=2, verbose=0, lr=1e-3, cache=False)
    settings.update(overrides)
    return FinetuneConfig(**settings)


def test_finetune_writes_models_and_logs(test_data, tmp_path):
    history = finetune(config(test_data, tmp_path))
    run = tmp_path / "run"
    for key in ("loss", "cc", "kld", "nss", "sim", "val_loss", "val_cc", "val_kld", "val_nss", "val_sim"):
        assert len(history.history[key]) == 2 and np.isfinite(history.history[key]).all()
    best = keras.saving.load_model(run / "best.keras")
    final = keras.saving.load_model(run / "final.keras")
    assert best.name == final.name == "fastsal_A"
    assert best.output["prob"].shape[1:] == (64, 64, 1)
    with open(run / "log.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    assert not list(run.glob(".*partial*"))


class Interrupt(keras.callbacks.Callback):
    """Stands in for a killed process: raises in the middle of epoch `epoch` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.current = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise KeyboardInterrupt


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_run_resumes_from_last_finished_epoch(test_data, tmp_path):
    cfg = config(test_data, tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        finetune(cfg, extra_callbacks=[Interrupt(epoch=1)])
    recorder = EpochRecorder()
    history = finetune(cfg, extra_callbacks=[recorder])
    assert recorder.epochs == [1, 2]  # epoch 0 was kept; only the interrupted epoch is redone
    assert len(history.history["loss"]) == 2
    assert (tmp_path / "run" / "final.keras").exists()


def test_nan_loss_stops_training_naming_epoch_and_batch():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    x = np.ones((8, 4), np.float32)
    x[5] = np.nan
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, batch 3 \(optimizer step 3\)"):
        model.fit(x, np.ones((8, 1)), batch_size=2, epochs=1, shuffle=False, callbacks=[StopOnNaN()],
                  verbose=0)


def write_pseudo_labels(test_data, folder, names=("1010.jpg", "1024.jpg")):
    """One shard labelling fixture images with a centred blob (kind prob)."""
    from fastsal_tf.data.pseudo_labels import encode_pseudo_label, shard_path

    folder.mkdir()
    yy, xx = np.mgrid[0:60, 0:80]
    blob = np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 200.0)
    with tf.io.TFRecordWriter(str(shard_path(folder, 0, 1))) as writer:
        for name in names:
            data = (test_data / "datasets" / "osie" / "data" / "stimuli" / name).read_bytes()
            writer.write(encode_pseudo_label(data, name[:-4], blob / blob.sum(), "prob", "blob", "1"))


def test_pseudo_labelled_images_extend_the_labelled_set(test_data, tmp_path):
    write_pseudo_labels(test_data, tmp_path / "labels")
    cfg = config(test_data, tmp_path, pseudo_labels=str(tmp_path / "labels"), pseudo_mode="extra", epochs=1,
                 batch_size=1)
    counter = BatchCounter()
    history = finetune(cfg, extra_callbacks=[counter])
    assert counter.batches == 2 + 2  # two labelled images and two pseudo-labelled ones, batch 1
    assert np.isfinite(history.history["loss"]).all()
    with pytest.raises(ValueError, match="nss_weight > 0 needs fixations"):  # pseudo-labelled images have none
        finetune(config(test_data, tmp_path, out_dir=str(tmp_path / "nss"), pseudo_labels=str(tmp_path / "labels"),
                        pseudo_mode="extra", nss_weight=0.1))
    assert not (tmp_path / "nss").exists()


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_bad_settings_are_clear_errors(test_data, tmp_path):
    with pytest.raises(ValueError, match="imagenet_weights"):
        finetune(config(test_data, tmp_path, init="imagenet"))
    with pytest.raises(ValueError, match="teacher"):
        finetune(config(test_data, tmp_path, objective="deepgaze"))
    with pytest.raises(ValueError, match="no full batch"):
        finetune(config(test_data, tmp_path, batch_size=64))
    with pytest.raises(ValueError, match="schedule"):
        learning_rate("step", 0.1, 10, 10)
    for area in (0.0, 1.5):
        with pytest.raises(ValueError, match="crop_min_area"):
            finetune(config(test_data, tmp_path, crop_min_area=area, out_dir=str(tmp_path / "crop")))
    assert not (tmp_path / "crop").exists()  # refused before anything is written


def test_without_crops_training_images_keep_the_whole_frame(test_data, tmp_path):
    """crop_min_area 1: flips and photometric jitter only, so every image keeps all its fixated pixels."""
    def fixated_pixels(**overrides):
        train, _, _ = datasets(config(test_data, tmp_path, batch_size=1, **overrides))
        return sorted(float(tf.reduce_sum(targets["fixation_map"])) for _, targets in train)

    full = fixated_pixels(augment=False)
    assert fixated_pixels(crop_min_area=1.0) == full
    assert sum(fixated_pixels(crop_min_area=0.2, seed=3)) < sum(full)
