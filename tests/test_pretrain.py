"""Hint pretraining: teachers (loading, shape checks, the VGG example), pretrain() end to end on the OSIE
fixture, and the hand-over of the hint model's weights to FastSal-A / C (transfer_weights, finetune --init)."""

import dataclasses
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from fastsal_tf.models import build_fastsal
from fastsal_tf.train.finetune import FinetuneConfig, initial_network
from fastsal_tf.train.pretrain import PretrainConfig, network_from, pretrain, transfer_weights
from fastsal_tf.train.teachers import hint_shapes, load_teacher, salgan_like_vgg_teacher
from fastsal_tf.weights.imagenet import backbone_layer_names

ROOT = pathlib.Path(__file__).resolve().parents[1]
OSIE = ROOT / "tests" / "data" / "datasets" / "osie"
SIZE = (64, 64)


def tiny_teacher(channels=(128, 256, 512, 512), size=SIZE):
    """Four pool + 1×1 conv stages: f1 128 @ H/2 ... f4 512 @ H/16, dict outputs (sorted names = hint order),
    and a map output from an intermediate layer so layer-name selection can be tested."""
    inputs = keras.Input((*size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    features = {}
    for i, c in enumerate(channels):
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(c, 1, activation="relu", name=f"f{i + 1}")(x)
        features[f"f{i + 1}"] = x
    return keras.Model(inputs, features, name="tiny_teacher")


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    keras.utils.set_random_seed(1)
    tiny_teacher().save(path)
    return path


@pytest.fixture(scope="module")
def run(teacher_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    config = PretrainConfig(out_dir=str(out), data_dir=str(OSIE), split_file=str(OSIE / "osie_split.json"),
                            teacher=str(teacher_file), size=SIZE, init="none", epochs=3, batch_size=1, limit=1,
                            augment=False, verbose=0)
    return out, pretrain(config)


@pytest.fixture(scope="module")
def hint(run):
    return keras.saving.load_model(run[0] / "best.keras")


def test_pretrain_end_to_end(run, hint):
    out, history = run
    # 1 training image, no augmentation: every epoch is one optimizer step on the same (fixed) batch
    losses = history.history["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert np.isfinite(history.history["val_loss"]).all()
    assert hint.name == "fastsal_hint" and sorted(hint.output) == ["hint_0", "hint_1", "hint_2", "hint_3"]
    assert keras.saving.load_model(out / "final.keras").name == "fastsal_hint"
    assert (out / "log.csv").read_text().count("\n") == 4 and (out / "config.json").is_file()


def test_finetune_init_from_hint_model(run, hint):
    out, _ = run
    config = FinetuneConfig(out_dir="unused", data_dir="unused", variant="C", size=SIZE, init=str(out / "best.keras"))
    network = initial_network(config)
    assert network.name == "fastsal_C" and set(network.output) == {"logits", "map", "prob"}
    for name in ("adapt_3", "Conv1", "block_16_project_BN"):
        for a, b in zip(network.get_layer(name).get_weights(), hint.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_finetune_init_from_a_trained_fastsal_of_another_variant_or_size(tmp_path):
    """--init=A.keras --variant=C gives C with A's backbone (not A itself); the same variant at another size
    is rebuilt at the training size with every weight; the same variant and size is the model itself."""
    network_a = build_fastsal("A", (*SIZE, 3))
    network_a.get_layer("Conv1").kernel.assign(np.full(network_a.get_layer("Conv1").kernel.shape, 0.5, np.float32))
    path = tmp_path / "a.keras"
    network_a.save(path)
    init = lambda variant, size: initial_network(FinetuneConfig(out_dir="unused", data_dir="unused", variant=variant,
                                                                size=size, init=str(path)))
    c = init("C", SIZE)
    assert c.name == "fastsal_C"
    np.testing.assert_array_equal(c.get_layer("Conv1").kernel.numpy(), 0.5)
    a_bigger = init("A", (96, 128))
    assert a_bigger.input_shape[1:3] == (96, 128)
    for x, y in zip(a_bigger.get_weights(), network_a.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert init("A", SIZE).input_shape[1:3] == SIZE


def test_transfer_weights_into_c_and_a(hint):
    backbone = {name for pair in backbone_layer_names() for name in pair}
    adapt = {f"adapt_{i}" for i in range(4)}
    network_c = build_fastsal("C", (*SIZE, 3))
    assert set(transfer_weights(hint, network_c)) == backbone | adapt
    np.testing.assert_array_equal(network_c.get_layer("adapt_2").kernel.numpy(),
                                  hint.get_layer("adapt_2").kernel.numpy())
    network_a = build_fastsal("A", (*SIZE, 3))
    assert set(transfer_weights(hint, network_a)) == backbone  # A's adapt_k have other widths
    np.testing.assert_array_equal(network_a.get_layer("block_3_expand").kernel.numpy(),
                                  hint.get_layer("block_3_expand").kernel.numpy())
    assert not np.array_equal(network_a.get_layer("adapt_3").kernel.numpy(), hint.get_layer("adapt_3").kernel.numpy())
    network_c_from_a = network_from(network_a, "C")  # a trained A hands its backbone to C
    np.testing.assert_array_equal(network_c_from_a.get_layer("block_16_project").kernel.numpy(),
                                  network_a.get_layer("block_16_project").kernel.numpy())
    assert network_c_from_a.name == "fastsal_C"
    with pytest.raises(ValueError, match="hint-pretrained"):
        network_from(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="other"), "C")


def test_teacher_shape_mismatch_is_a_clear_error(tmp_path):
    path = tmp_path / "wrong.keras"
    tiny_teacher(channels=(128, 256, 256, 512)).save(path)
    with pytest.raises(ValueError, match=r"hint_2 ← f3: \(8, 8, 256\), expected \(8, 8, 512\)"):
        load_teacher(path, input_shape=(*SIZE, 3))
    config = PretrainConfig(out_dir=str(tmp_path / "out"), data_dir=str(OSIE), split_file=str(OSIE / "osie_split.json"),
                            teacher=str(path), size=SIZE, init="none", epochs=1, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match="do not match"):
        pretrain(config)
    assert not (tmp_path / "out").exists()  # nothing written


def test_teacher_output_selection(teacher_file):
    with pytest.raises(ValueError, match="give 4 teacher output names"):
        load_teacher(teacher_file, "f1,f2", (*SIZE, 3))
    with pytest.raises(ValueError, match="no output or layer 'nope'"):
        load_teacher(teacher_file, "f1,f2,f3,nope", (*SIZE, 3))
    teacher = load_teacher(teacher_file, "f1, f2, f3, f4", (*SIZE, 3))
    assert [tuple(t.shape[1:]) for t in teacher.output] == hint_shapes((*SIZE, 3))
    assert not teacher.trainable


def test_teacher_by_intermediate_layer_names(tmp_path):
    base = tiny_teacher()
    saliency = keras.layers.Conv2D(1, 1, activation="sigmoid", name="map")(base.output["f4"])
    path = tmp_path / "encoder_decoder.keras"
    keras.Model(base.input, saliency).save(path)
    with pytest.raises(ValueError, match="has 1 outputs"):
        load_teacher(path, input_shape=(*SIZE, 3))
    teacher = load_teacher(path, "f1,f2,f3,f4", (*SIZE, 3))
    assert len(teacher.output) == 4
    with pytest.raises(ValueError, match="does not accept the student's input"):
        load_teacher(path, "f1,f2,f3,f4", (96, 64, 3))


def test_flexible_size_teacher(tmp_path):
    path = tmp_path / "flexible.keras"
    tiny_teacher(size=(None, None)).save(path)
    teacher = load_teacher(path, input_shape=(*SIZE, 3))
    assert teacher.input_shape == (None, *SIZE, 3)
    assert [tuple(t.shape[1:]) for t in teacher.output] == hint_shapes((*SIZE, 3))


def test_salgan_like_vgg_teacher(tmp_path):
    teacher = salgan_like_vgg_teacher((*SIZE, 3))
    assert sorted(teacher.output) == ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
    assert [tuple(teacher.output[k].shape[1:]) for k in sorted(teacher.output)] == hint_shapes((*SIZE, 3))
    pre = teacher.get_layer("vgg_preprocess")(np.array([[[[255.0, 0.0, 10.0]]]], np.float32))
    np.testing.assert_allclose(np.asarray(pre)[0, 0, 0], [10 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-5)
    with pytest.raises(ValueError, match="local weights file"):
        salgan_like_vgg_teacher((*SIZE, 3), weights="imagenet")
    with pytest.raises(ValueError, match="local weights file"):
        salgan_like_vgg_teacher((*SIZE, 3), weights=tmp_path / "missing.h5")


def test_savedmodel_teacher(tmp_path):
    model = tiny_teacher()
    model.export(str(tmp_path / "saved"), verbose=False)
    teacher = load_teacher(tmp_path / "saved", input_shape=(*SIZE, 3))
    features = teacher(np.zeros((1, *SIZE, 3), np.float32))
    np.testing.assert_allclose(features[3], model(np.zeros((1, *SIZE, 3), np.float32))["f4"], atol=1e-6)


@pytest.mark.slow
def test_pretrain_program(teacher_file, tmp_path):
    command = [sys.executable, str(ROOT / "training" / "pretrain.py"), f"--out_dir={tmp_path / 'out'}",
               f"--data_dir={OSIE}", f"--split_file={OSIE / 'osie_split.json'}", f"--teacher={teacher_file}",
               "--size=64x64", "--init=none", "--epochs=1", "--batch_size=2", "--noaugment"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "best.keras").is_file()
    bad = [arg for arg in command if not arg.startswith("--teacher=")]
    bad += ["--teacher=vgg16", "--teacher_weights=imagenet"]
    bad = subprocess.run(bad, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "pretrain: error: VGG16 teacher weights must be a local" in bad.stderr


@pytest.mark.slow  # about 20 s on 2 cores
def test_pretrain_on_the_images_of_a_mixture(teacher_file, tmp_path):
    """Hint pretraining on a labelled set plus a photo folder (its bad file skipped by name); labels unused."""
    datasets_dir = OSIE.parent
    config = PretrainConfig(out_dir=str(tmp_path / "out"), data_dir=str(OSIE), split_file=str(OSIE / "osie_split.json"),
                            teacher=str(teacher_file), size=SIZE, init="none", epochs=2, batch_size=2, verbose=0,
                            train=f"osie:train,photos@{datasets_dir / 'photos'}", mix_weights="1,1", steps_per_epoch=2)
    history = pretrain(config)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert keras.saving.load_model(tmp_path / "out" / "final.keras").name == "fastsal_hint"
    with pytest.raises(ValueError, match="source nope"):
        pretrain(dataclasses.replace(config, out_dir=str(tmp_path / "out2"), train="osie:train,nope@/x"))
