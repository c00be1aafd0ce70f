"""Hint-loss pretraining (paper eq. 1): the FastSal backbone + adaptation layers regress four intermediate
feature maps of a frozen teacher on the images of a dataset split, with model.fit.

The teacher: a .keras model or a SavedModel directory whose four outputs (or named layers, --teacher_outputs)
have the student's hint shapes (H/2×128, H/4×256, H/8×512, H/16×512) for RGB 0–255 input; or "vgg16", a
SalGAN-like VGG16 encoder (fastsal_tf.train.teachers.salgan_like_vgg_teacher) with --teacher_weights.

Example:
  python training/pretrain.py --data_dir=../shared/data/osie --out_dir=runs/hint \
      --teacher=salgan_teacher.keras --imagenet_weights=../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
  python training/finetune.py --data_dir=../shared/data/osie --out_dir=runs/osie_c --variant=C \
      --init=runs/hint/best.keras
Rerunning an interrupted command resumes from its last finished epoch (BackupAndRestore in out_dir).
"""

import dataclasses
import sys

import mixture_flags
from absl import flags

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", None, "output folder (best.keras, final.keras, log.csv, backup/)")
flags.DEFINE_string("teacher", None, "teacher: a .keras model, a SavedModel directory, or 'vgg16'")
flags.DEFINE_string("teacher_outputs", "", "4 comma-separated teacher output or layer names in hint order "
                    "(default: all 4 outputs, sorted by name)")
flags.DEFINE_string("teacher_weights", "", "local VGG16 weights file for --teacher=vgg16 (nothing is downloaded)")
absl_flags.define_dataset_flags(split=False)  # only the dataset's images are used
flags.adopt_module_key_flags(absl_flags)  # --help lists them
flags.DEFINE_string("train_split", "train", "training split")
mixture_flags.define_mixture_flags()
flags.adopt_module_key_flags(mixture_flags)
flags.DEFINE_string("val_split", "validation", "validation split (selects best.keras by val_loss)")
flags.DEFINE_string("size", "192x256", "network input HxW (multiples of 32)")
flags.DEFINE_enum("init", "imagenet", ["imagenet", "none"], "student backbone initialisation")
flags.DEFINE_string("imagenet_weights", "", "MobileNetV2 LiteRT classifier (.tflite) for --init=imagenet")
flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "sgd: momentum 0.9")
flags.DEFINE_float("lr", 1e-3, "base learning rate")
flags.DEFINE_enum("schedule", "cosine", ["cosine", "paper", "constant"], "paper: x0.1 at epochs 15, 30, 60")
flags.DEFINE_integer("epochs", 10, "epochs")
flags.DEFINE_integer("batch_size", 8, "global batch size")
flags.DEFINE_bool("augment", True, "flip, random resized crop and photometric jitter")
flags.DEFINE_enum("freeze_batchnorm", "backbone", ["backbone", "all", "none"], "BatchNorm layers run in inference mode")
flags.DEFINE_bool("mixed_precision", False, "mixed_float16 compute (GPUs)")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker", "tpu"], "tf.distribute strategy")
flags.DEFINE_integer("seed", 0, "random seed")
flags.DEFINE_integer("limit", 0, "use only the first N images of each split (smoke tests)")
flags.DEFINE_bool("cache", True, "cache decoded images in memory")
flags.mark_flags_as_required(["out_dir", "data_dir", "teacher"])


def main(argv):
    del argv
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.train.callbacks import TrainingDivergedError
    from fastsal_tf.train.pretrain import PretrainConfig, pretrain

    names = {f.name for f in dataclasses.fields(PretrainConfig)} - {"size", "verbose"}
    try:
        config = PretrainConfig(size=parse_size(FLAGS.size), **{name: FLAGS[name].value for name in names})
        history = pretrain(config)
    except (ValueError, OSError, TrainingDivergedError) as error:
        print(f"pretrain: error: {error}", file=sys.stderr)
        return 2
    best = min(history.history.get("val_loss", [float("nan")]))
    print(f"pretrain: done; best val_loss {best:.4f}; hint models in {config.out_dir} "
          f"(fine-tune with --init={config.out_dir}/best.keras)")
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
