"""The training-mixture flags shared by finetune.py and pretrain.py (fastsal_tf.train.mixture)."""

from absl import flags


def define_mixture_flags():
    """--train, --mix_weights, --extra_dir, --steps_per_epoch."""
    flags.DEFINE_string("train", "", "a training mixture instead of --dataset/--train_split: sources "
                        "name[:split][@root] separated by commas, e.g. "
                        "osie:train,hamburg_cv2:train,rss2015,pseudo@labels/photos "
                        "(root: @root, else --data_dir for --dataset, else --extra_dir/name)")
    flags.DEFINE_string("mix_weights", "", "sampling weights of the --train sources, e.g. 1,1,0.5 (default: "
                        "proportional to their sizes)")
    flags.DEFINE_string("extra_dir", "", "folder holding the extra sets as <name>/ (shared/tools/extra_data.py --out)")
    flags.DEFINE_integer("steps_per_epoch", 0, "--train mixtures: steps per epoch (default: one pass's worth of "
                         "images)")
