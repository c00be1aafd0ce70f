"""Fine-tuning FastSal-A / C with model.fit: data, initialisation, objective, optimiser, callbacks.

`finetune(config)` is everything `training/finetune.py` does; the program only parses flags into a
FinetuneConfig. Outputs in config.out_dir: best.keras (best validation metric), final.keras, log.csv,
tensorboard/, backup/ (BackupAndRestore state: rerunning the same command resumes an interrupted run
from its last finished epoch), config.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import keras
import tensorflow as tf

from fastsal_tf.data.augment import Augmentation
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.pseudo_labels import list_shards
from fastsal_tf.data.registry import get_reader, read_dataset
from fastsal_tf.models import TF_NATIVE, build_fastsal
from fastsal_tf.train import callbacks as cb
from fastsal_tf.train.mixture import build_mixture, parse_sources
from fastsal_tf.train.objectives import Objective
from fastsal_tf.train.setup import (backbone_variables, freeze, learning_rate, make_optimizer, make_strategy,
                                    seed_everything)
from fastsal_tf.train.trainers import SaliencyTrainer, fit_pairs
from fastsal_tf.weights.imagenet import load_tflite_imagenet, tflite_normalization


@dataclasses.dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (see training/finetune.py for each flag's help)."""

    out_dir: str
    data_dir: str
    dataset: str = "osie"
    split_file: str = ""  # a split JSON of the dataset other than its packaged one (osie, eyecrowd, hamburg_cv2)
    train: str = ""  # a mixture "name[:split][@root],...,pseudo@DIR" (train/mixture.py); "": dataset:train_split
    mix_weights: str = ""  # sampling weights of the mixture's sources; "": proportional to their sizes
    extra_dir: str = ""  # folder holding the extra sets as <name>/ (shared/tools/extra_data.py --out)
    steps_per_epoch: int = 0  # mixtures: optimizer steps per epoch; 0: one pass's worth of images
    cache_size: tuple[int, int] | None = None  # mixtures decode once at (H, W); None: size / sqrt(crop_min_area)
    train_split: str = "train"
    val_split: str = "validation"
    variant: str = "A"
    size: tuple[int, int] = (192, 256)
    init: str = "imagenet"  # "imagenet", "none", or a .keras model: hint-pretrained or a FastSal A / C
    imagenet_weights: str = ""  # a MobileNetV2 LiteRT classifier (.tflite) for init="imagenet"
    objective: str = "kld_cc"
    use_ground_truth: bool = True
    pseudo_labels: str = ""  # a folder of pseudo-label shards
    pseudo_mode: str = "extra"  # "extra": more images, teacher map as target; "teacher": teacher term on the same images
    cc_weight: float = 0.5
    nss_weight: float = 0.0
    teacher_weight: float = 1.0
    sigma_px: float | None = None  # density sigma in stored-image pixels; None: 1 degree if known, else 24
    optimizer: str = "adam"
    lr: float = 3e-4
    backbone_lr_scale: float = 1.0  # the backbone steps with lr × this (discriminative fine-tuning)
    decoder_weight_decay: float = 0.0  # decoupled decay of the decoder's kernels (w ← w − lr·this·w per step)
    ema_momentum: float = 0.0  # > 0: validate, select and save the moving average of the weights
    schedule: str = "cosine"
    epochs: int = 30
    batch_size: int = 8
    augment: bool = True
    crop_min_area: float = 0.7  # smallest random crop, fraction of the image area; 1.0: no crop
    jitter: float = 0.1  # brightness / contrast / saturation jitter amplitude (stronger for a noisy student)
    freeze_backbone: bool = False
    freeze_batchnorm: str = "backbone"
    mixed_precision: bool = False
    strategy: str = "default"
    seed: int = 0
    monitor: str = "val_cc"
    early_stopping: int = 0  # patience in epochs; 0 disables
    limit: int = 0  # use only the first N train / validation examples (smoke tests)
    cache: bool = True
    verbose: int = 2

    def objective_spec(self):
        use_teacher = bool(self.pseudo_labels) and self.pseudo_mode == "teacher"
        return Objective(self.objective, self.use_ground_truth, use_teacher, self.cc_weight, self.teacher_weight,
                         self.nss_weight)


def density_sigma(config):
    """Sigma in stored-image pixels: the flag, else the dataset's (DatasetSpec.sigma_px: 1 degree where its
    pixels per degree are known, else its authors' blur), else 24 px."""
    if config.sigma_px:
        return float(config.sigma_px)
    return float(get_reader(config.dataset).sigma_px or 24.0)


def read_examples(config, split):
    options = {"split_file": config.split_file} if config.split_file else {}
    result = read_dataset(config.dataset, config.data_dir, split, **options)
    items = list(result)[: config.limit or None]
    if not items:
        raise ValueError(f"{config.dataset} split {split!r} under {config.data_dir} has no examples")
    return items


def pseudo_label_shards(config):
    shards = [str(p) for p in list_shards(config.pseudo_labels)]
    if not shards:
        raise ValueError(f"no pseudo-label shards (*.tfrecord) in {config.pseudo_labels}")
    return shards


def teacher_as_density(image, targets):
    """(image, {"teacher": map}) → (image, {"density": the teacher map divided by its sum})."""
    teacher = targets["teacher"]
    return image, {"density": teacher / (tf.reduce_sum(teacher, axis=(1, 2, 3), keepdims=True) + 1e-12)}


def mixture_cache_size(config) -> tuple[int, int]:
    """config.cache_size, else the network size divided by sqrt(crop_min_area), rounded up: the smallest
    random crop of the cached image still covers the network frame."""
    if config.cache_size:
        return tuple(int(v) for v in config.cache_size)
    margin = 1.0 / math.sqrt(config.crop_min_area)
    return tuple(int(math.ceil(v * margin)) for v in config.size)


def mixture_datasets(config, training: PipelineConfig):
    """(train, steps per epoch, summary) of a mixture run (config.train); see fastsal_tf.train.mixture."""
    if config.pseudo_labels:
        raise ValueError("with a mixture (train), add the pseudo-labels as a source 'pseudo@FOLDER' instead of "
                         "pseudo_labels")
    sources = parse_sources(config.train, config.mix_weights, roots={config.dataset: config.data_dir},
                            extra_dir=config.extra_dir)
    training = dataclasses.replace(training, cache_size=mixture_cache_size(config))
    train, images, summary = build_mixture(sources, training, cache_dir=pathlib.Path(config.out_dir) / "cache",
                                           sigma_px=config.sigma_px or None, limit=config.limit,
                                           split_files={config.dataset: config.split_file})
    steps = config.steps_per_epoch or images // config.batch_size
    return train, steps, summary


def datasets(config):
    """(train, validation, train steps per epoch): tf.data pipelines of (image, targets) pairs.

    With config.train, the training set is a mixture of sources (fastsal_tf.train.mixture). Otherwise
    pseudo_mode "teacher": the shards label the training images themselves (teacher term of the
    objective). "extra": the shards are additional, unlabelled images whose teacher map is used as
    their density target, interleaved with the labelled set (the paper's distillation set-up).
    Validation is always config.dataset's val_split.
    """
    common = dict(size=tuple(config.size), sigma_px=density_sigma(config), batch_size=config.batch_size,
                  seed=config.seed, cache=config.cache)
    if not 0 < config.crop_min_area <= 1:
        raise ValueError(f"crop_min_area must be in (0, 1], got {config.crop_min_area}")
    if not 0 <= config.jitter <= 1:
        raise ValueError(f"jitter must be in [0, 1], got {config.jitter}")
    crop_scale = None if config.crop_min_area == 1 else (config.crop_min_area, 1.0)
    augmentation = Augmentation(crop_scale=crop_scale, brightness=config.jitter, contrast=config.jitter,
                                saturation=config.jitter) if config.augment else None
    training = PipelineConfig(augment=augmentation, shuffle=True, drop_remainder=True, shuffle_buffer=1000, **common)
    val = build_pipeline(read_examples(config, config.val_split), PipelineConfig(**common)).map(fit_pairs)
    if config.train:
        train, steps, _ = mixture_datasets(config, training)
        if steps < 1:
            raise ValueError(f"the mixture makes no full batch of {config.batch_size}")
        return train, val, steps
    train_examples = read_examples(config, config.train_split)
    steps = len(train_examples) // config.batch_size
    if config.pseudo_labels and config.pseudo_mode == "teacher":
        train = build_pipeline(train_examples, training, pseudo_labels=pseudo_label_shards(config)).map(fit_pairs)
    elif config.pseudo_labels:
        if config.nss_weight:
            raise ValueError("nss_weight > 0 needs fixations, which the pseudo-labelled extra images "
                             "(pseudo_mode 'extra') do not have: use nss_weight 0 or pseudo_mode 'teacher'")
        labelled = build_pipeline(train_examples, training).map(fit_pairs)
        labelled = labelled.map(lambda image, targets: (image, {"density": targets["density"]}))
        extra = build_pipeline(None, training, pseudo_labels=pseudo_label_shards(config)).map(fit_pairs)
        extra = extra.map(teacher_as_density)
        train = labelled.concatenate(extra).shuffle(64, seed=config.seed)
        steps += sum(1 for _ in tf.data.TFRecordDataset(pseudo_label_shards(config))) // config.batch_size
    else:
        train = build_pipeline(train_examples, training).map(fit_pairs)
    if steps < 1:
        raise ValueError(f"{len(train_examples)} training examples make no full batch of {config.batch_size}")
    return train, val, steps


def initial_network(config):
    """The network to fine-tune, built and initialised as config.init says."""
    if config.init not in ("imagenet", "none"):
        if not pathlib.Path(config.init).is_file():
            raise ValueError(f"init model not found: {config.init}")
        try:
            loaded = keras.saving.load_model(config.init)
        except Exception as error:  # Keras raises many types for a file that is not a model
            raise ValueError(f"init {config.init}: not a loadable .keras model ({type(error).__name__})") from None
        if loaded.name == f"fastsal_{config.variant}" and tuple(loaded.input_shape[1:3]) == tuple(config.size):
            return loaded
        from fastsal_tf.train.pretrain import network_from  # hint model, other variant or size: copy by name

        return network_from(loaded, config.variant, tuple(config.size))
    settings = dict(TF_NATIVE)
    if config.init == "imagenet":
        if not config.imagenet_weights:
            raise ValueError("init 'imagenet' needs imagenet_weights: a MobileNetV2 LiteRT classifier .tflite")
        settings["normalization"] = tflite_normalization(config.imagenet_weights)
    network = build_fastsal(config.variant, (*config.size, 3), **settings)
    if config.init == "imagenet":
        load_tflite_imagenet(network, config.imagenet_weights)
    return network


def finetune(config, extra_callbacks=()):
    """Runs the fine-tuning; returns the Keras History. Raises ValueError on bad settings or data and
    TrainingDivergedError on a NaN loss."""
    seed_everything(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    train, val, steps_per_epoch = datasets(config)
    with make_strategy(config.strategy).scope():
        network = initial_network(config)
        freeze(network, config.freeze_backbone, config.freeze_batchnorm)
        trainer = SaliencyTrainer(network, config.objective_spec())
        lr = learning_rate(config.schedule, config.lr, steps_per_epoch, config.epochs)
        backbone = backbone_variables(network)
        trainer.compile(optimizer=make_optimizer(config.optimizer, lr, backbone, config.backbone_lr_scale,
                                                 config.decoder_weight_decay, undecayed_variables=backbone,
                                                 ema_momentum=config.ema_momentum))
    out = pathlib.Path(config.out_dir)  # bad data, settings or init fail above, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    # With an EMA the swap runs after the backup (which keeps the raw weights) and before everything that
    # reads the epoch's model: validation, best.keras and, at the end, final.keras hold the average.
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum else []
    callbacks = [cb.StopOnNaN(), keras.callbacks.BackupAndRestore(str(out / "backup")), *swap,
                 cb.SaveBestNetwork(out / "best.keras", config.monitor),
                 keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
                 keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0)]
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(config.monitor, patience=config.early_stopping,
                                                       mode="min" if "kld" in config.monitor else "max"))
    history = trainer.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks + list(extra_callbacks),
                          steps_per_epoch=steps_per_epoch if config.train else None, verbose=config.verbose)
    cb.save_atomically(network, out / "final.keras")
    return history
