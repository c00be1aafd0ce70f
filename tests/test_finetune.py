"""Fine-tuning end to end on the tiny OSIE fixture: model.fit, checkpoints, resume, NaN guard,
objectives, and MirroredStrategy parity."""

import csv
import functools
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
from fastsal_tf.train.setup import backbone_variables, freeze, learning_rate, make_optimizer
from fastsal_tf.train.trainers import SaliencyTrainer


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


@pytest.mark.slow  # 15-40 s on 2 cores: in the slow step, to keep the default suite under 10 min
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


@pytest.mark.slow  # 15-40 s on 2 cores: in the slow step, to keep the default suite under 10 min
def test_teacher_mode_trains_with_teacher_maps_and_validates_on_ground_truth(test_data, tmp_path):
    write_pseudo_labels(test_data, tmp_path / "labels", names=("1001.jpg", "1002.jpg"))  # the training images
    history = finetune(config(test_data, tmp_path, pseudo_labels=str(tmp_path / "labels"), pseudo_mode="teacher",
                              epochs=1, nss_weight=0.1))
    assert np.isfinite(history.history["loss"]).all() and np.isfinite(history.history["val_loss"]).all()
    assert (tmp_path / "run" / "final.keras").is_file()


def test_validation_loss_is_the_objectives_ground_truth_part():
    keras.utils.set_random_seed(0)
    network = build_fastsal("A", (32, 32, 3))
    objective = Objective("kld_cc", use_teacher=True, teacher_weight=2.0, nss_weight=0.1)
    trainer = SaliencyTrainer(network, objective)
    trainer.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    density = rng.uniform(size=(4, 32, 32, 1)).astype(np.float32)
    density /= density.sum(axis=(1, 2, 3), keepdims=True)
    fixations = (rng.uniform(size=(4, 32, 32, 1)) > 0.9).astype(np.float32)
    targets = {"density": density, "fixation_map": fixations}
    val_loss = trainer.evaluate(images, targets, batch_size=4, verbose=0, return_dict=True)["loss"]
    outputs = network(images, training=False)
    expected = Objective("kld_cc", nss_weight=0.1)(targets, outputs)
    assert val_loss == pytest.approx(float(expected), rel=1e-5)
    assert objective.on_ground_truth() == Objective("kld_cc", nss_weight=0.1, teacher_weight=2.0)
    assert Objective("deepgaze", use_ground_truth=False, use_teacher=True).on_ground_truth().kind == "kld_cc"
    assert Objective("salgan", use_teacher=True).on_ground_truth() == Objective("salgan")


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
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip")
    refused = [(dict(crop_min_area=0.0), "crop_min_area"), (dict(crop_min_area=1.5), "crop_min_area"),
               (dict(backbone_lr_scale=-1.0), "learning-rate scale"),
               (dict(init=str(tmp_path / "missing.keras")), "init model not found: .*missing.keras"),
               (dict(init=str(corrupt)), "init .*corrupt.keras: not a loadable"),
               (dict(init="imagenet"), "imagenet_weights")]
    for overrides, message in refused:
        with pytest.raises(ValueError, match=message):
            finetune(config(test_data, tmp_path, out_dir=str(tmp_path / "refused"), **overrides))
        assert not (tmp_path / "refused").exists()  # refused before anything is written


def test_paper_schedule_drops_tenfold_at_epochs_15_30_60():
    schedule = learning_rate("paper", 0.01, steps_per_epoch=10, epochs=100)
    rates = [float(schedule(step)) for step in (0, 149, 151, 299, 301, 599, 601)]
    np.testing.assert_allclose(rates, [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4, 1e-5], rtol=1e-6)


def test_objectives_match_their_definitions():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(2, 8, 8, 1)), tf.float32)
    prob = tf.reshape(tf.nn.softmax(tf.reshape(logits, (2, -1))), (2, 8, 8, 1))
    density = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)
    density /= density.sum(axis=(1, 2, 3), keepdims=True)
    teacher = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)
    outputs = {"logits": logits, "prob": prob}
    kld = np.mean([np.sum(d * np.log(2.220446049250313e-16 + d / (p + 2.220446049250313e-16)))
                   for d, p in zip(density, prob.numpy())])
    cc = np.mean([np.corrcoef(d.ravel(), p.ravel())[0, 1] for d, p in zip(density, prob.numpy())])
    got = Objective("kld_cc", cc_weight=0.5)({"density": density}, outputs)
    np.testing.assert_allclose(float(got), kld + 0.5 * (1 - cc), rtol=1e-5)
    fixations = np.zeros((2, 8, 8, 1), np.float32)
    fixations[0, 2, 3], fixations[0, 5, 5], fixations[1, 7, 0] = 1, 1, 1
    nss = np.mean([((p - p.mean()) / p.std(ddof=1))[f > 0].mean() for p, f in zip(prob.numpy(), fixations)])
    with_nss = Objective("kld_cc", cc_weight=0.5, nss_weight=0.2)({"density": density, "fixation_map": fixations},
                                                                  outputs)
    np.testing.assert_allclose(float(with_nss), kld + 0.5 * (1 - cc) - 0.2 * nss, rtol=1e-5)
    sig = 1 / (1 + np.exp(-logits.numpy()))
    bce = lambda t: np.mean(-(t * np.log(sig) + (1 - t) * np.log(1 - sig)))  # noqa: E731
    both = Objective("salgan", use_teacher=True)({"density_max1": density / density.max(), "teacher": teacher}, outputs)
    np.testing.assert_allclose(float(both), bce(density / density.max()) + bce(teacher), rtol=1e-5)
    with pytest.raises(ValueError, match="teacher"):
        Objective("salgan", use_teacher=True)({"density_max1": density}, outputs)
    with pytest.raises(ValueError, match="ground truth, the teacher"):
        Objective("kld_cc", use_ground_truth=False)


def test_freeze_backbone_and_batchnorm():
    model = build_fastsal("A", (64, 64, 3))
    freeze(model, backbone=False, batchnorm="backbone")
    assert not model.get_layer("block_3_expand_BN").trainable and model.get_layer("block_3_expand").trainable
    assert model.get_layer("dec2_expand_BN").trainable
    freeze(model, backbone=True, batchnorm="all")
    assert not model.get_layer("block_3_expand").trainable and not model.get_layer("dec2_expand_BN").trainable
    assert model.get_layer("adapt_1").trainable and model.get_layer("logits").trainable
    freeze(model, backbone=False, batchnorm="none")  # the flags decide: frozen layers are unfrozen
    assert all(layer.trainable for layer in model.layers)


@pytest.mark.slow  # 15-40 s on 2 cores: in the slow step, to keep the default suite under 10 min
def test_init_from_a_model_saved_frozen_trains_its_backbone(test_data, tmp_path):
    keras.utils.set_random_seed(0)
    start = build_fastsal("A", (64, 64, 3))
    freeze(start, backbone=True)  # as saved by a decoder-only (--freeze_backbone) run
    start.save(tmp_path / "decoder_only.keras")
    finetune(config(test_data, tmp_path, init=str(tmp_path / "decoder_only.keras"), epochs=1))
    trained = keras.saving.load_model(tmp_path / "run" / "final.keras")
    kernel = lambda model: model.get_layer("block_3_expand").kernel.numpy()  # noqa: E731
    assert np.abs(kernel(trained) - kernel(start)).max() > 1e-5


@functools.lru_cache(maxsize=None)  # read-only results, shared by the tests below
def one_step(name, scale=1.0, weight_decay=0.0):
    """(start weights by path, change of every weight by path, backbone paths) after one training step
    of a 64×64 FastSal-A from a fixed start, all BatchNorm frozen."""
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    density = np.full((2, 64, 64, 1), 1 / 4096, np.float32)
    density[:, :16] *= 3
    density /= density.sum(axis=(1, 2, 3), keepdims=True)
    network = build_fastsal("A", (64, 64, 3))  # the same start each call: seeded above
    start = {v.path: v.numpy() for v in network.weights}
    freeze(network, batchnorm="all")
    backbone = backbone_variables(network)
    trainer = SaliencyTrainer(network, Objective("kld_cc"))
    trainer.compile(optimizer=make_optimizer(name, 1e-2, backbone, scale, weight_decay, undecayed_variables=backbone))
    trainer.train_on_batch(images, {"density": density})
    return start, {v.path: v.numpy() - start[v.path] for v in network.weights}, {v.path for v in backbone}


@pytest.mark.slow  # about 30 s per optimiser on 2 cores
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_backbone_lr_scale_slows_only_the_backbone(name):
    """One step from zero momentum: Adam moves every weight with a non-zero gradient by lr (sign of the
    gradient), SGD by lr × gradient, so the backbone's steps are lr_scale times what the same gradient
    gives the decoder without a scale."""
    _, plain, backbone = one_step(name, 1.0)
    _, slow, _ = one_step(name, 0.1)
    assert backbone and len(backbone) < len(plain)
    for path in plain:
        expected = plain[path] * (0.1 if path in backbone else 1.0)
        np.testing.assert_allclose(slow[path], expected, rtol=1e-3, atol=1e-7)
    if name == "adam":
        moved = np.abs(plain["Conv1/kernel"])[np.abs(plain["Conv1/kernel"]) > 0]  # lr·|g| / (|g| + eps)
        assert moved.max() <= 1e-2 * (1 + 1e-5) and np.median(moved) > 0.99e-2
    with pytest.raises(ValueError, match="learning-rate scale"):
        make_optimizer(name, 1e-2, [], -1.0)


@pytest.mark.parametrize("name,scale", [("adam", 0.1), pytest.param("adam", 1.0, marks=pytest.mark.slow),
                                        pytest.param("sgd", 1.0, marks=pytest.mark.slow)])
def test_decoder_weight_decay_shrinks_only_decoder_kernels(name, scale):
    """Decoupled decay: the first step from zero momentum moves a decayed weight w by its gradient step
    plus -lr·wd·w, so against the same step without decay the difference is exactly -lr·wd·w on every
    decoder kernel, and zero on the backbone, biases and BatchNorm parameters."""
    start, plain, backbone = one_step(name, scale)
    _, decayed, _ = one_step(name, scale, weight_decay=2.0)
    shrunk = [p for p in start if p not in backbone and p.endswith("/kernel")]
    assert len(shrunk) >= 10 and any(p.startswith("adapt_") for p in shrunk) and "logits/kernel" in shrunk
    for path in start:
        expected = -1e-2 * 2.0 * start[path] if path in shrunk else 0.0
        np.testing.assert_allclose(decayed[path] - plain[path], expected, rtol=1e-4, atol=1e-8, err_msg=path)
    with pytest.raises(ValueError, match="weight decay"):
        make_optimizer(name, 1e-2, [], 1.0, -0.5)


class StepWeights(keras.callbacks.Callback):
    """The wrapped network's trainable weights (by path) after every training step, per epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append({v.path: v.numpy() for v in self.model.network.trainable_weights})


@pytest.mark.slow  # 15-40 s on 2 cores: in the slow step, to keep the default suite under 10 min
def test_ema_run_validates_and_saves_the_moving_average(test_data, tmp_path):
    """With ema_momentum m, best.keras and final.keras hold a_k = m·a_(k-1) + (1 − m)·w_k over the raw
    weights w_k after each step (a_1 = w_1), recomputed here from the recorded raw weights; and the run
    selects best.keras by the validation score of that average."""
    m = 0.6
    recorder = StepWeights()
    history = finetune(config(test_data, tmp_path, epochs=3, batch_size=1, ema_momentum=m),
                       extra_callbacks=[recorder])
    averages, average = [], None
    for steps in recorder.epochs:
        for weights in steps:
            average = dict(weights) if average is None else {k: m * average[k] + (1 - m) * w
                                                             for k, w in weights.items()}
        averages.append(average)
    assert len(averages) == 3 and sum(len(steps) for steps in recorder.epochs) >= 6
    final = {v.path: v.numpy() for v in keras.saving.load_model(tmp_path / "run" / "final.keras").trainable_weights}
    last_raw = recorder.epochs[-1][-1]
    assert final.keys() == averages[-1].keys()
    assert max(np.abs(final[k] - last_raw[k]).max() for k in final) > 1e-4  # the average is not the raw weights
    for path, value in final.items():
        np.testing.assert_allclose(value, averages[-1][path], rtol=1e-4, atol=1e-6, err_msg=path)
    best_epoch = int(np.argmax(history.history["val_cc"]))
    best = {v.path: v.numpy() for v in keras.saving.load_model(tmp_path / "run" / "best.keras").trainable_weights}
    for path, value in best.items():
        np.testing.assert_allclose(value, averages[best_epoch][path], rtol=1e-4, atol=1e-6, err_msg=path)
    with pytest.raises(ValueError, match="EMA momentum"):
        make_optimizer("adam", 1e-2, ema_momentum=1.0)


MIRRORED = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastsal_tf.models import build_fastsal
    from fastsal_tf.train.objectives import Objective
    from fastsal_tf.train.setup import freeze
    from fastsal_tf.train.trainers import SaliencyTrainer

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 64, 64, 3)).astype(np.float32)
    density = rng.uniform(size=(8, 64, 64, 1)).astype(np.float32)
    density /= density.sum(axis=(1, 2, 3), keepdims=True)
    data = tf.data.Dataset.from_tensor_slices((images, {"density": density})).batch(4)
    keras.utils.set_random_seed(1)
    weights = build_fastsal("A", (64, 64, 3)).get_weights()

    def losses(strategy):
        with strategy.scope():
            network = build_fastsal("A", (64, 64, 3))
            network.set_weights(weights)
            freeze(network, batchnorm="all")
            trainer = SaliencyTrainer(network, Objective("kld_cc"))
            trainer.compile(optimizer=keras.optimizers.SGD(0.05))
        return [trainer.train_on_batch(x, y, return_dict=True)["loss"] for x, y in list(data) * 2]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    print("LOSSES", losses(tf.distribute.get_strategy()), losses(mirrored))
""")


@pytest.mark.slow  # 15-40 s on 2 cores: in the slow step, to keep the default suite under 10 min
def test_mirrored_strategy_matches_default_strategy():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("LOSSES"))
    default, mirrored = eval(line[len("LOSSES"):].replace("] [", "], ["))
    assert len(default) == 4 and default[-1] < default[0]
    np.testing.assert_allclose(mirrored, default, rtol=1e-4)


def test_missing_data_fails_before_writing_anything(tmp_path):
    with pytest.raises(ValueError, match="fixations.mat"):
        finetune(FinetuneConfig(out_dir=str(tmp_path / "run"), data_dir=str(tmp_path / "no_osie"), init="none"))
    assert not (tmp_path / "run").exists()


def test_without_crops_training_images_keep_the_whole_frame(test_data, tmp_path):
    """crop_min_area 1: flips and photometric jitter only, so every image keeps all its fixated pixels."""
    def fixated_pixels(**overrides):
        train, _, _ = datasets(config(test_data, tmp_path, batch_size=1, **overrides))
        return sorted(float(tf.reduce_sum(targets["fixation_map"])) for _, targets in train)

    full = fixated_pixels(augment=False)
    assert fixated_pixels(crop_min_area=1.0) == full
    assert sum(fixated_pixels(crop_min_area=0.2, seed=3)) < sum(full)
