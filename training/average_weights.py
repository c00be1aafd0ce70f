"""Average the weights of several fine-tuned FastSal models of one architecture ("model soup").

Example (C runs from the same --init and seed, different regularisers):
  python training/average_weights.py --models=runs/osie_c2/final.keras,runs/osie_c7/final.keras \
      --out=runs/c_soup.keras
Only networks fine-tuned from the same starting point average well (fastsal_tf.train.soup).
"""

import sys

from absl import flags

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "comma-separated .keras models of one architecture")
flags.DEFINE_string("out", None, "output .keras file")
flags.mark_flags_as_required(["models", "out"])


def main(argv):
    del argv
    from fastsal_tf.train.soup import average_model_files

    try:
        network = average_model_files(FLAGS.models, FLAGS.out)
    except (ValueError, OSError) as error:
        print(f"average_weights: error: {error}", file=sys.stderr)
        return 2
    print(f"average_weights: {network.name}, the mean of {len(FLAGS.models)} models, written to {FLAGS.out}")
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
