"""Converts a FastSal model (.keras or an authors' .pth) to LiteRT (.tflite) with parity checks.

The absl-flags twin of `fastsal export` (same library call, fastsal_tf.export.export_tflite). Examples:

  python tflite/convert.py --model=fastsal_A.keras --out=fastsal_A_fp32.tflite
  python tflite/convert.py --model=fastsal_A.keras --mode=int8 --representative=../shared/data/osie/data/stimuli \
      --out=fastsal_A_int8.tflite --outputs=map,prob

Writes OUT and OUT's <stem>.parity.json only when every check passed (exit status 1 otherwise).
"""

from __future__ import annotations

import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fastsal_tf.cli import absl_flags  # noqa: E402  (the repository root first, for runs from a checkout)
from fastsal_tf.cli.export import EXPORT_OPTIONS, MODEL_HELP, OUT_HELP, export_options, print_result  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, MODEL_HELP)
flags.DEFINE_string("out", None, OUT_HELP)
absl_flags.define_option_flags(EXPORT_OPTIONS)
flags.adopt_module_key_flags(absl_flags)  # --help lists them
flags.DEFINE_bool("check_parity", True, "fail (write nothing) when the parity bounds are missed")
flags.DEFINE_bool("json", False, "print the result as JSON")
flags.mark_flags_as_required(["model", "out"])


def main(argv):
    del argv
    from fastsal_tf.cli import import_tensorflow_quietly
    from fastsal_tf.export.options import export_from_options

    import_tensorflow_quietly()
    try:
        result = export_from_options(export_options(FLAGS, FLAGS.check_parity))
    except (ValueError, OSError) as error:
        print(f"convert.py: error: {error}", file=sys.stderr)
        return 1
    print_result(result, FLAGS.json)
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
