"""absl flags that several programs define alike (training/, tflite/convert.py): one definition each (the
programs parse them; the library never does); `run(main)` starts such a program."""

from __future__ import annotations

import os
import sys

from absl import app, flags


def run(main) -> None:
    """absl's app.run(main) with the interrupt handling of the `fastsal` command: Ctrl-C and SIGTERM end
    the program with one line and status 130 / 143 (common.console.run_interruptible)."""
    from fastsal_tf.common.console import run_interruptible

    program = os.path.basename(sys.argv[0])
    app.run(lambda argv: run_interruptible(program, main, argv))


def define_dataset_flags(dataset: str = "osie", split: bool = True) -> None:
    """--dataset, --data_dir, --split (when `split`) and --split_file. dataset: the default dataset name; ""
    when the dataset is optional (the program takes an image folder instead), which also makes --data_dir
    default to "" rather than required-looking None."""
    flags.DEFINE_string("dataset", dataset, "dataset name (fastsal_tf.data.registry)")
    flags.DEFINE_string("data_dir", None if dataset else "", "dataset root")
    if split:
        flags.DEFINE_string("split", "", "dataset split (default: the dataset's first)")
    flags.DEFINE_string("split_file", "", "split JSON of osie, eyecrowd or hamburg_cv2 (default: the packaged split)")


def define_option_flags(options) -> None:
    """absl flags from (name, default, choices or None, help) rows (e.g. fastsal_tf.cli.export.EXPORT_OPTIONS,
    shared with the `fastsal` command): an enum with choices, an integer >= 1 for an int default, else a string."""
    for name, default, choices, text in options:
        if choices:
            flags.DEFINE_enum(name, default, list(choices), text)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, text, lower_bound=1)
        else:
            flags.DEFINE_string(name, default, text)
