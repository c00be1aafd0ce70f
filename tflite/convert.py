"""Converts a FastSal model (.keras or an authors' .pth) to LiteRT (.tflite) with parity checks.

The absl-flags twin of `fastsal export` (same library call, fastsal_tf.export.export_tflite). Examples:

  python tflite/convert.py --model=fastsal_A.keras --out=fastsal_A_fp32.tflite
  python tflite/convert.py --model=fastsal_A.keras --mode=int8 --representative=../shared/data/osie/data/stimuli \
      --out=fastsal_A_int8.tflite --outputs=map,prob

Writes OUT and OUT's <stem>.parity.json only when every check passed (exit status 1 otherwise).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "a .keras model file or an authors' .pth checkpoint")
flags.DEFINE_string("out", None, "output .tflite file")
flags.DEFINE_enum("mode", "fp32", ["fp32", "fp16", "dynamic", "int8"], "export mode")
flags.DEFINE_string("size", "192x256", "fixed input HxW, multiples of 32")
flags.DEFINE_enum("input_dtype", "uint8", ["uint8", "float32"], "input tensor type (RGB 0-255 either way)")
flags.DEFINE_string("outputs", "map", "comma-separated subset of map, prob, logits")
flags.DEFINE_enum("map_dtype", "float32", ["float32", "uint8"], "saliency_map type")
flags.DEFINE_string("representative", None, "directory of calibration images (required for int8)")
flags.DEFINE_integer("num_representative", 200, "number of calibration images")
flags.DEFINE_string("validation", None, "directory of parity images (default: representative or synthetic)")
flags.DEFINE_integer("num_validation", 8, "number of parity images")
flags.DEFINE_string("normalization", "imagenet", "in-model normalisation of a .pth checkpoint")
flags.DEFINE_string("training_data", None, "metadata: what the weights were trained on")
flags.DEFINE_integer("threads", 2, "LiteRT threads for the parity run")
flags.DEFINE_bool("check_parity", True, "fail (write nothing) when the parity bounds are missed")
flags.DEFINE_bool("json", False, "print the result as JSON")
flags.mark_flags_as_required(["model", "out"])


def main(argv):
    del argv
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fastsal_tf.cli import import_tensorflow_quietly
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.cli.export import print_result
    from fastsal_tf.export.options import ExportOptions, export_from_options

    import_tensorflow_quietly()
    try:
        names = {field.name for field in dataclasses.fields(ExportOptions)} & set(FLAGS) - {"size"}
        options = ExportOptions(size=parse_size(FLAGS.size), **{name: FLAGS[name].value for name in names})
        result = export_from_options(options)
    except (ValueError, OSError) as error:
        print(f"convert.py: error: {error}", file=sys.stderr)
        return 1
    print_result(result, FLAGS.json)
    return 0


if __name__ == "__main__":
    app.run(main)
