"""The `fastsal` command line. Each subcommand lives in its own module with `add_parser(subparsers)`
(registering its arguments and `func`) and a `run(args) -> int` exit status. TensorFlow is imported (quietly)
before a command runs, except for the commands that set `lazy_tensorflow=True` as a parser default (predict,
crop, center, info, benchmark): they import it only when they load a TensorFlow model, so running a LiteRT
model, `--help` and parsing never import it."""

from __future__ import annotations

import argparse
import importlib
import sys

from fastsal_tf.common.console import import_tensorflow_quietly  # noqa: F401  (also used by the programs)

# Subcommand name → module in fastsal_tf.cli.
COMMANDS = {
    "info": "info",
    "import-torch": "import_torch",
    "predict": "predict",
    "export": "export",
    "benchmark": "benchmark",
    "evaluate": "evaluate",
    "center": "center",
    "crop": "crop",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastsal", description="FastSal visual saliency prediction "
                                     "(TensorFlow / Keras 3, LiteRT).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(f"fastsal_tf.cli.{module_name}").add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    from fastsal_tf.common.console import run_interruptible

    args = build_parser().parse_args(argv)
    return run_interruptible(f"fastsal {args.command}", _run, args)


def _run(args) -> int:
    import warnings

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"fastsal {args.command}: warning: {message}", file=sys.stderr)

    if not getattr(args, "lazy_tensorflow", False):
        import_tensorflow_quietly()
    with warnings.catch_warnings():
        warnings.showwarning = show_warning  # one line per warning, without the source line
        try:
            return int(args.func(args) or 0)
        except (ValueError, OSError) as error:  # library errors name the file/argument at fault
            print(f"fastsal {args.command}: error: {error}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
