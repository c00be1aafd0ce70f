"""Compares models evaluated on the same images: each metric's mean ± per-image standard error, and the
paired CC difference to the first model (mean ± standard error of the per-image differences).

Usage: python benchmarks/compare_evaluations.py NAME=DIR [NAME=DIR ...]
  DIR: a `fastsal evaluate --out` folder (its per_image.csv). Example, shipped A against shipped C:
  fastsal evaluate --model default   --dataset osie --data-dir ../shared/data/osie --split validation --out eval/a
  fastsal evaluate --model default-c --dataset osie --data-dir ../shared/data/osie --split validation --out eval/c
  python benchmarks/compare_evaluations.py A=eval/a C=eval/c
"""

import pathlib
import sys

from fastsal_tf.evaluation.comparison import condition_table, read_per_image


def main(args):
    if not args or any("=" not in arg for arg in args):
        print(__doc__, file=sys.stderr)
        return 2
    scores = {}
    for arg in args:
        name, folder = arg.split("=", 1)
        path = pathlib.Path(folder) / "per_image.csv"
        try:
            scores[name] = read_per_image(path)
        except (OSError, ValueError) as error:
            print(f"compare_evaluations: error: {error}", file=sys.stderr)
            return 2
    names = list(scores)
    print(condition_table(scores, {name: [name] for name in names}, baseline=names[0]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
