"""Evaluate a model (or a folder of maps) and the center bias on a dataset split: the same code as
`fastsal evaluate` (fastsal_tf.evaluation.run_evaluation), with absl flags.

Example:
  python training/evaluate.py --model=runs/osie_a/best.keras --dataset=osie \
      --data_dir=../shared/data/osie --split=validation --out_dir=runs/osie_a/eval
"""

import sys

from absl import flags

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "'default', a .keras / .tflite / .pth file, or a folder of maps")
absl_flags.define_dataset_flags()
flags.adopt_module_key_flags(absl_flags)  # --help lists them
flags.DEFINE_enum("protocol", "mit", ["mit", "authors"], "mit (ours) or authors (the paper's eval.py post-processing)")
flags.DEFINE_string("out_dir", "evaluation", "report folder")
flags.DEFINE_integer("limit", 0, "evaluate only the first N images (0: all)")
flags.DEFINE_float("sigma_px", None, "density sigma in stored-image pixels (default: 1 degree where known)")
flags.DEFINE_string("baseline_split", "auto", "split whose mean density is the center bias; 'none': centred Gaussian")
flags.DEFINE_integer("seed", 0, "seed of the random negatives and jitter")
flags.DEFINE_string("size", "", "network input HxW for a .pth import (default 192x256)")
flags.mark_flags_as_required(["model", "data_dir"])


def main(argv):
    del argv
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.common.console import Progress
    from fastsal_tf.evaluation import markdown_table, run_evaluation, write_reports

    report = run_evaluation(FLAGS.model, FLAGS.dataset, FLAGS.data_dir, split=FLAGS.split or None, protocol=FLAGS.protocol,
                            sigma_px=FLAGS.sigma_px, limit=FLAGS.limit or None, baseline_split=FLAGS.baseline_split,
                            split_file=FLAGS.split_file or None, seed=FLAGS.seed,
                            input_size=parse_size(FLAGS.size) if FLAGS.size else None, progress=Progress())
    paths = write_reports(report, FLAGS.out_dir)
    print(markdown_table(report))
    print(f"reports: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


if __name__ == "__main__":
    absl_flags.run(main)
