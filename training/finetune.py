"""Fine-tune FastSal-A or C on a saliency dataset with model.fit (paper Sec. III-C, Table V switches).

Example (the shipped default model; see BUILD.md):
  python training/finetune.py --data_dir=../shared/data/osie --out_dir=runs/osie_a \
      --imagenet_weights=../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite
Rerunning an interrupted command resumes from its last finished epoch (BackupAndRestore in out_dir).
"""

import dataclasses
import sys

import mixture_flags
from absl import flags

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", None, "output folder (best.keras, final.keras, log.csv, tensorboard/, backup/)")
flags.DEFINE_string("data_dir", None, "dataset root")
flags.DEFINE_string("dataset", "osie", "dataset name (fastsal_tf.data.registry)")
flags.DEFINE_string("split_file", "", "split JSON of osie, eyecrowd or hamburg_cv2 (default: the packaged split)")
flags.DEFINE_string("train_split", "train", "training split")
mixture_flags.define_mixture_flags()
flags.adopt_module_key_flags(mixture_flags)
flags.DEFINE_string("cache_size", "", "--train mixtures: HxW at which images are decoded once and cached (default: "
                    "--size / sqrt(--crop_min_area))")
flags.DEFINE_string("val_split", "validation", "validation split")
flags.DEFINE_enum("variant", "A", ["A", "C"], "FastSal variant")
flags.DEFINE_string("size", "192x256", "network input HxW (multiples of 32)")
flags.DEFINE_string("init", "imagenet", "'imagenet', 'none', or a .keras model to start from: hint-pretrained, or a "
                    "FastSal of either variant (another variant hands over its backbone only)")
flags.DEFINE_string("imagenet_weights", "", "MobileNetV2 LiteRT classifier (.tflite) for --init=imagenet")
flags.DEFINE_enum("objective", "kld_cc", ["kld_cc", "salgan", "deepgaze"],
                  "kld_cc: KLD + CC on the prob output; salgan: paper eq. 2 (BCE on the map output); "
                  "deepgaze: paper eq. 3 (teacher probability map)")
flags.DEFINE_bool("ground_truth", True, "use the ground-truth term (Table V: GT on/off)")
flags.DEFINE_string("pseudo_labels", "", "folder of teacher pseudo-label shards (Table V: teacher on)")
flags.DEFINE_enum("pseudo_mode", "extra", ["extra", "teacher"],
                  "extra: shards are more images with the teacher map as target; teacher: shards label the "
                  "training images and add the objective's teacher term")
flags.DEFINE_float("cc_weight", 0.5, "weight of (1 - CC) in the kld_cc objective")
flags.DEFINE_float("nss_weight", 0.0, "weight of -NSS (prob vs the fixation map) in the kld_cc objective")
flags.DEFINE_float("teacher_weight", 1.0, "weight of the teacher term")
flags.DEFINE_float("sigma_px", None, "density sigma in stored-image pixels (default: 1 degree if known, else 24)")
flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "sgd is the paper's (momentum 0.9)")
flags.DEFINE_float("lr", 3e-4, "base learning rate (paper: 0.01 with sgd)")
flags.DEFINE_float("backbone_lr_scale", 1.0, "the MobileNetV2 backbone steps with lr x this (decoder: lr)")
flags.DEFINE_float("decoder_weight_decay", 0.0, "decoupled weight decay of the decoder's kernels: each step "
                   "w <- w - lr * this * w (the backbone never decays)")
flags.DEFINE_float("ema_momentum", 0.0, "> 0: keep a moving average of the weights (a <- m*a + (1-m)*w per "
                   "step); validation, best.keras and final.keras use it")
flags.DEFINE_enum("schedule", "cosine", ["cosine", "paper", "constant"], "paper: x0.1 at epochs 15, 30, 60")
flags.DEFINE_integer("epochs", 30, "epochs (paper: 100)")
flags.DEFINE_integer("batch_size", 8, "global batch size")
flags.DEFINE_bool("augment", True, "flip, random resized crop and photometric jitter")
flags.DEFINE_float("crop_min_area", 0.7, "smallest random crop as a fraction of the image area (1: no crop)")
flags.DEFINE_float("jitter", 0.1, "brightness / contrast / saturation jitter amplitude (e.g. 0.3 for a noisy student)")
flags.DEFINE_bool("freeze_backbone", False, "train only the decoder")
flags.DEFINE_enum("freeze_batchnorm", "backbone", ["backbone", "all", "none"], "BatchNorm layers run in inference mode")
flags.DEFINE_bool("mixed_precision", False, "mixed_float16 compute (GPUs)")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker", "tpu"], "tf.distribute strategy")
flags.DEFINE_integer("seed", 0, "random seed")
flags.DEFINE_string("monitor", "val_cc", "validation metric selecting best.keras (val_cc, val_nss, val_kld, val_sim)")
flags.DEFINE_integer("early_stopping", 0, "patience in epochs (0: off)")
flags.DEFINE_integer("limit", 0, "use only the first N examples of each split (smoke tests)")
flags.DEFINE_bool("cache", True, "cache decoded images in memory")
flags.mark_flags_as_required(["out_dir", "data_dir"])


def main(argv):
    del argv
    from fastsal_tf.cli.info import parse_size
    from fastsal_tf.train.callbacks import TrainingDivergedError
    from fastsal_tf.train.finetune import FinetuneConfig, finetune

    names = {f.name for f in dataclasses.fields(FinetuneConfig)} - {"size", "use_ground_truth", "verbose", "cache_size"}
    sizes = {}
    for flag in ("size", "cache_size"):
        try:
            sizes[flag] = parse_size(FLAGS[flag].value) if FLAGS[flag].value else None
        except ValueError:
            print(f"finetune: error: --{flag} must look like 192x256, got {FLAGS[flag].value!r}", file=sys.stderr)
            return 2
    config = FinetuneConfig(use_ground_truth=FLAGS.ground_truth, **sizes, **{name: FLAGS[name].value for name in names})
    try:
        history = finetune(config)
    except (ValueError, OSError, TrainingDivergedError) as error:
        print(f"finetune: error: {error}", file=sys.stderr)
        return 2
    last = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    print(f"finetune: done; last epoch {last}; best.keras and final.keras in {config.out_dir}")
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
