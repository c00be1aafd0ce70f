"""Compares models evaluated on the same images: each metric's mean ± per-image standard error, and the
paired CC difference to the first model (mean ± standard error of the per-image differences).

Usage: python benchmarks/compare_evaluations.py NAME=DIR[,DIR...] [NAME=DIR[,DIR...] ...]
  DIR: a `fastsal evaluate --out` folder (its per_image.csv). Several folders separated by commas are runs of
  one condition (e.g. seeds of a recipe): their per-image scores are averaged over the runs, and the last
  column lists each run's mean CC. Example, shipped A against shipped C:
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
    scores, conditions = {}, {}
    for arg in args:
        name, folders = arg.split("=", 1)
        if name in conditions:
            print(f"compare_evaluations: error: the name {name!r} is given twice", file=sys.stderr)
            return 2
        if not all(folders.split(",")):
            print(f"compare_evaluations: error: {arg}: an empty folder name in the list", file=sys.stderr)
            return 2
        conditions[name] = []
        for folder in folders.split(","):
            try:
                scores[folder] = read_per_image(pathlib.Path(folder) / "per_image.csv")
            except (OSError, ValueError) as error:
                print(f"compare_evaluations: error: {error}", file=sys.stderr)
                return 2
            conditions[name].append(folder)
    print(condition_table(scores, conditions, baseline=next(iter(conditions))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
