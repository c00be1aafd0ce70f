"""Write a multi-scale FastSal (fastsal_tf.models.multiscale): one .keras model that runs a FastSal's
weights at several input sizes and averages the probability maps. Use it as a pseudo-labelling teacher
(`training/pseudo_label.py --teacher=...`, alone or in a comma-separated ensemble with another of the same
largest size) or score it (`benchmarks/generalisation.py NAME=FILE`).

Example (the two-scale teachers of docs/experiments.md):
  python training/multiscale_teacher.py --model=fast --out=runs/teachers/a_ms.keras
  python training/multiscale_teacher.py --model=default-c --out=runs/teachers/c_ms.keras --sizes=192x256,288x384
"""

import sys

from absl import flags

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "a FastSal .keras file or shipped name (default, default-c; LiteRT names "
                    "mean the Keras model they came from)")
flags.DEFINE_string("out", None, "output .keras file")
flags.DEFINE_list("sizes", None, "HxW of each pass, multiples of 32; the input is the largest (default: the "
                  "network's own size and 1.5x it, e.g. 192x256,288x384)")
flags.DEFINE_bool("flip", False, "also run each size on the mirrored image and average its mirrored-back map")
flags.mark_flags_as_required(["model", "out"])


def main(argv):
    del argv
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.models.multiscale import build_multiscale, multiscale_sizes, own_size
    from fastsal_tf.runtime.resolve import load_keras, resolve_keras
    from fastsal_tf.train.callbacks import save_atomically

    try:
        if not FLAGS.out.endswith(".keras"):
            raise ValueError(f"--out must name a .keras file, got {FLAGS.out!r}")
        model = load_keras(resolve_keras(FLAGS.model))
        sizes = ([parse_size(text, "--sizes") for text in FLAGS.sizes] if FLAGS.sizes
                 else list(multiscale_sizes(own_size(model))))
        network = build_multiscale(model, sizes, flip=FLAGS.flip)
        save_atomically(network, FLAGS.out)
    except (ValueError, OSError) as error:
        print(f"multiscale_teacher: error: {error}", file=sys.stderr)
        return 2
    passes = ", ".join(f"{height}x{width}" for height, width in sizes)
    print(f"multiscale_teacher: {network.name} ({passes}{', flipped too' if FLAGS.flip else ''}) written to {FLAGS.out}")
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
