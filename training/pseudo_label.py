"""Pseudo-label images with a saliency teacher into sharded TFRecords (fastsal_tf.data.pseudo_labels).

The teacher: a .keras model (FastSal or any model with a saliency-map output), a SavedModel directory, a
LiteRT .tflite file, a folder of precomputed maps matched to the images by file stem, or an ensemble of
models separated by commas (the label is the mean of theirs). What is stored (label kind, resolution,
format, provenance) is described in fastsal_tf/train/pseudo_label.py.

Examples (4 machines, each labelling one shard; shard i takes images i, i+4, ... of the sorted list):
  python training/pseudo_label.py --teacher=runs/teacher_c/best.keras --images=coco/unlabelled \
      --out_dir=labels/coco_c --num_shards=4 --shard_index=0 --teacher_name=fastsal_c --teacher_version=run7
  python training/pseudo_label.py --teacher=maps/ --dataset=osie --data_dir=../shared/data/osie \
      --split=train --out_dir=labels/osie --label_kind=map
  python training/pseudo_label.py --teacher=runs/a_s0/final.keras,runs/a_s1/final.keras --dataset=osie \
      --data_dir=../shared/data/osie --split=train --out_dir=labels/osie_ensemble --label_format=float16
Finished shards are skipped when the command is rerun; without --shard_index every shard is labelled here.
"""

import sys

from absl import flags

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("teacher", None, "a .keras / .tflite file, a SavedModel directory, a folder of maps, "
                    "or several models separated by commas (their mean label)")
flags.DEFINE_string("out_dir", None, "output folder for <prefix>-<i>-of-<N>.tfrecord shards")
flags.DEFINE_string("images", "", "a folder of images to label, sub-folders included (or --dataset)")
absl_flags.define_dataset_flags(dataset="")  # a dataset split to label, or --images
flags.adopt_module_key_flags(absl_flags)  # --help lists them
flags.DEFINE_integer("num_shards", 1, "number of shards the images are divided into")
flags.DEFINE_integer("shard_index", None, "label only this shard (0-based); default: all shards, in turn")
flags.DEFINE_enum("label_kind", "prob", ["map", "prob"], "map: sigmoid map in [0, 1]; prob: sums to 1")
flags.DEFINE_enum("label_size", "network", ["network", "image"],
                  "network: the teacher's output resolution (maps: as stored); image: resized to the image")
flags.DEFINE_enum("label_format", "png", ["png", "float16"], "8-bit PNG or raw float16")
flags.DEFINE_string("teacher_name", "", "provenance: teacher name (default: its file name)")
flags.DEFINE_string("teacher_version", "", "provenance: teacher version (default: sha256 of its file)")
flags.DEFINE_string("teacher_output", "", "the teacher output to use (default: chosen by name for --label_kind)")
flags.DEFINE_string("input_size", "192x256", "network frame HxW for teachers with a flexible input size")
flags.DEFINE_integer("batch_size", 8, "images per teacher call")
flags.DEFINE_bool("skip_bad", False, "skip unreadable images and missing maps (listed at the end) instead of failing")
flags.DEFINE_string("prefix", "pseudo_labels", "shard file name prefix")
flags.DEFINE_bool("flip", False, "average each label with the mirrored label of the mirrored image")
flags.mark_flags_as_required(["teacher", "out_dir"])


def main(argv):
    del argv
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.common.console import Progress
    from fastsal_tf.train.pseudo_label import PseudoLabelConfig, pseudo_label

    names = ("teacher", "out_dir", "images", "dataset", "data_dir", "split", "split_file", "num_shards",
             "shard_index", "label_kind", "label_size", "label_format", "teacher_name", "teacher_version",
             "teacher_output", "batch_size", "skip_bad", "prefix", "flip")
    progress = Progress(prefix="pseudo_label: ", final_line=True)
    try:
        config = PseudoLabelConfig(input_size=parse_size(FLAGS.input_size, "--input_size"), **{n: FLAGS[n].value for n in names})
        report = pseudo_label(config, progress=progress)
    except (ValueError, OSError) as error:
        progress.close(final=False)
        print(f"pseudo_label: error: {error}", file=sys.stderr)
        return 2
    for shard in report.shards:
        print(f"pseudo_label: {shard.path}: {shard.status}, {shard.count} records")
        for skipped in shard.skipped:
            print(f"pseudo_label:   skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    print(f"pseudo_label: done; teacher {report.teacher} ({report.teacher_version or 'no version'}), "
          f"{report.num_images} images in the list")
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
