"""Hint-loss pretraining (paper eq. 1) with model.fit, and the hand-over of its weights to FastSal-A / C.

`pretrain(config)` is everything `training/pretrain.py` does. The student is `build_hint_model` (MobileNetV2
backbone + feature groups + adaptation layers adapt_0..3); it regresses the four feature maps of a frozen
teacher (fastsal_tf.train.teachers) on the images of a dataset split — no saliency labels are used.
Outputs in config.out_dir: best.keras (lowest val_loss), final.keras (both the hint model
"fastsal_hint"), log.csv, backup/ (BackupAndRestore state: rerunning the same command resumes an
interrupted run from its last finished epoch), config.json.

The hint model's layer names are FastSal-C's (backbone and adapt_0..3) and FastSal-A's backbone, so
`training/finetune.py --init=out_dir/best.keras --variant=A|C` starts from it: `network_from` builds
the variant with the hint model's settings and `transfer_weights` copies every layer by name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import keras

from fastsal_tf.data.augment import Augmentation
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.registry import read_dataset
from fastsal_tf.models import TF_NATIVE, build_fastsal, build_hint_model, describe
from fastsal_tf.train import callbacks as cb
from fastsal_tf.train.mixture import build_mixture, parse_sources
from fastsal_tf.train.setup import freeze, learning_rate, make_optimizer, make_strategy, seed_everything
from fastsal_tf.train.teachers import load_teacher
from fastsal_tf.train.trainers import HintTrainer
from fastsal_tf.weights.imagenet import load_tflite_imagenet, tflite_normalization

HINT_MODEL_NAME = "fastsal_hint"


@dataclasses.dataclass
class PretrainConfig:
    """Settings of one hint-pretraining run (see training/pretrain.py for each flag's help)."""

    out_dir: str
    data_dir: str
    teacher: str  # a .keras model, a SavedModel directory, or "vgg16" (see fastsal_tf.train.teachers)
    teacher_outputs: str = ""  # 4 comma-separated output / layer names in hint order; empty: all, sorted
    teacher_weights: str = ""  # local weights file of the "vgg16" teacher
    dataset: str = "osie"
    split_file: str = ""  # a split JSON of the dataset other than its packaged one (osie, eyecrowd, hamburg_cv2)
    train: str = ""  # images of a mixture "name[:split][@root],...,pseudo@DIR" (labels unused); "": dataset:train_split
    mix_weights: str = ""  # sampling weights of the mixture's sources; "": proportional to their sizes
    extra_dir: str = ""  # folder holding the extra sets as <name>/ (shared/tools/extra_data.py --out)
    steps_per_epoch: int = 0  # mixtures: optimizer steps per epoch; 0: one pass's worth of images
    train_split: str = "train"
    val_split: str = "validation"
    size: tuple[int, int] = (192, 256)
    init: str = "imagenet"  # "imagenet" (MobileNetV2 from imagenet_weights) or "none"
    imagenet_weights: str = ""  # a MobileNetV2 LiteRT classifier (.tflite) for init="imagenet"
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "cosine"
    epochs: int = 10
    batch_size: int = 8
    augment: bool = True
    freeze_batchnorm: str = "backbone"
    mixed_precision: bool = False
    strategy: str = "default"
    seed: int = 0
    limit: int = 0  # use only the first N train / validation examples (smoke tests)
    cache: bool = True
    verbose: int = 2


def read_images(config, split):
    """The split's examples with their labels dropped (the teacher's features are the targets)."""
    options = {"split_file": config.split_file} if config.split_file else {}
    result = read_dataset(config.dataset, config.data_dir, split, **options)
    items = [dataclasses.replace(e, fixations=None, map_path=None) for e in list(result)[: config.limit or None]]
    if not items:
        raise ValueError(f"{config.dataset} split {split!r} under {config.data_dir} has no images")
    return items


def image_only(element):
    return element["image"]


CROP_MIN_AREA = 0.7


def datasets(config):
    """(train, validation, train steps per epoch): batches of RGB 0–255 images at config.size; with
    config.train, the training images come from a mixture (fastsal_tf.train.mixture, images only) cached at
    the network size plus the crop margin."""
    common = dict(size=tuple(config.size), batch_size=config.batch_size, seed=config.seed, cache=config.cache)
    augmentation = Augmentation(crop_scale=(CROP_MIN_AREA, 1.0), brightness=0.1, contrast=0.1, saturation=0.1) \
        if config.augment else None
    training = PipelineConfig(augment=augmentation, shuffle=True, drop_remainder=True, shuffle_buffer=1000, **common)
    val = build_pipeline(read_images(config, config.val_split), PipelineConfig(**common)).map(image_only)
    if config.train:
        sources = parse_sources(config.train, config.mix_weights, roots={config.dataset: config.data_dir},
                                extra_dir=config.extra_dir)
        cache_size = tuple(int(math.ceil(v / math.sqrt(CROP_MIN_AREA))) for v in config.size)
        train, images, _ = build_mixture(sources, dataclasses.replace(training, cache_size=cache_size),
                                         cache_dir=pathlib.Path(config.out_dir) / "cache",
                                         split_files={config.dataset: config.split_file}, limit=config.limit,
                                         images_only=True)
        steps = config.steps_per_epoch or images // config.batch_size
        if steps < 1:
            raise ValueError(f"the mixture makes no full batch of {config.batch_size}")
        return train, val, steps
    train_images = read_images(config, config.train_split)
    steps = len(train_images) // config.batch_size
    if steps < 1:
        raise ValueError(f"{len(train_images)} training images make no full batch of {config.batch_size}")
    train = build_pipeline(train_images, training).map(image_only)
    return train, val, steps


def initial_student(config):
    """build_hint_model at config.size with TF-native settings, ImageNet backbone when init="imagenet"."""
    if config.init not in ("imagenet", "none"):
        raise ValueError(f"init must be 'imagenet' or 'none', got {config.init!r}")
    settings = dict(TF_NATIVE)
    if config.init == "imagenet":
        if not config.imagenet_weights:
            raise ValueError("init 'imagenet' needs imagenet_weights: a MobileNetV2 LiteRT classifier .tflite")
        settings["normalization"] = tflite_normalization(config.imagenet_weights)
    student = build_hint_model((*config.size, 3), **settings)
    if config.init == "imagenet":
        load_tflite_imagenet(student, config.imagenet_weights)
    return student


# Layers of a destination network that share a name with the hint model but not its role: FastSal-A's
# adapt_0..3 are decoder layers (8, 32, 128, 512 channels; adapt_3 even has the hint head's shape), trained
# from scratch, whereas FastSal-C's adapt_0..3 are the hint head itself.
NOT_FROM_HINT = {"fastsal_A": ("adapt_",)}


def transfer_weights(src, dst):
    """Copies the weights of every layer of `dst` that `src` has under the same name with the same weight
    shapes, except dst's layers listed in NOT_FROM_HINT (a hint model → FastSal-C: backbone and
    adapt_0..3; → FastSal-A: the backbone only). Returns the names of the layers copied, in dst's order."""
    source = {layer.name: layer for layer in src.layers}
    excluded = NOT_FROM_HINT.get(dst.name, ()) if src.name == HINT_MODEL_NAME else ()
    copied = []
    for layer in dst.layers:
        other = source.get(layer.name)
        if other is None or not layer.weights or len(layer.weights) != len(other.weights):
            continue
        if excluded and layer.name.startswith(excluded):
            continue
        values = other.get_weights()
        if all(tuple(w.shape) == v.shape for w, v in zip(layer.weights, values)):
            layer.set_weights(values)
            copied.append(layer.name)
    return copied


def network_from(source, variant, size=None):
    """FastSal `variant` at `size` (default the source's) built with the settings of `source` (padding,
    BatchNorm epsilon, pixel-shuffle order, normalisation) and initialised from it by layer name.
    `source` is a hint-pretrained model or a FastSal model of either variant (A → C or C → A carries the
    backbone only: the adaptation layers and logits have other widths)."""
    if source.name not in (HINT_MODEL_NAME, "fastsal_A", "fastsal_C"):
        raise ValueError(f"expected a hint-pretrained model ({HINT_MODEL_NAME!r}) or a FastSal model, "
                         f"got {source.name!r}")
    settings = describe(source)
    shape = (*size, 3) if size else settings["input_shape"]
    network = build_fastsal(variant, shape, **{k: settings[k] for k in ("padding", "bn_epsilon", "pixel_shuffle",
                                                                          "normalization")})
    if not transfer_weights(source, network):
        raise ValueError(f"no layer of {source.name!r} matches the FastSal network")
    return network


def pretrain(config, extra_callbacks=()):
    """Runs the hint pretraining; returns the Keras History. Raises ValueError on bad settings, data or
    teacher, and TrainingDivergedError on a NaN loss."""
    out = pathlib.Path(config.out_dir)
    seed_everything(config.seed)
    train, val, steps_per_epoch = datasets(config)
    with make_strategy(config.strategy).scope():
        # the teacher is loaded (and checked) before anything is written or any policy changes
        teacher = load_teacher(config.teacher, config.teacher_outputs, (*config.size, 3),
                               config.teacher_weights or None)
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        student = initial_student(config)
        freeze(student, False, config.freeze_batchnorm)
        trainer = HintTrainer(student, teacher)
        lr = learning_rate(config.schedule, config.lr, steps_per_epoch, config.epochs)
        trainer.compile(optimizer=make_optimizer(config.optimizer, lr))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    callbacks = [cb.StopOnNaN(), keras.callbacks.BackupAndRestore(str(out / "backup")),
                 cb.SaveBestNetwork(out / "best.keras", monitor="val_loss"),
                 keras.callbacks.CSVLogger(str(out / "log.csv"), append=True)]
    history = trainer.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks + list(extra_callbacks),
                          steps_per_epoch=steps_per_epoch if config.train else None, verbose=config.verbose)
    cb.save_atomically(student, out / "final.keras")
    return history
