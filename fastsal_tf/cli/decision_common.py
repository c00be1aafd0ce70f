"""What `fastsal center` and `fastsal crop` share: their common flags and running their job over the inputs."""

from __future__ import annotations

import json
import sys

from fastsal_tf.cli.arguments import FLIP_HELP, MODEL_HELP, MULTISCALE_HELP, positive_int


def add_common_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns")
    parser.add_argument("--model", default="default", help=MODEL_HELP)
    parser.add_argument("--multiscale", action="store_true", help=MULTISCALE_HELP)
    parser.add_argument("--flip", action="store_true", help=FLIP_HELP)
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders of folder inputs")
    parser.add_argument("--json", action="store_true", help="print one JSON list with an object per image")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per model call, Keras (default 8)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="worker threads (LiteRT: parallel interpreters); default: CPU cores")
    parser.set_defaults(lazy_tensorflow=True)  # a LiteRT model runs without TensorFlow


def run_job(args, command: str, step, out_dir: str | None = None, check_items=None, is_output=None):
    """Runs step (see fastsal_tf.predict.decision_job) on the inputs. Returns (exit status, the results in
    input order). out_dir: where step writes files (None: it writes none). Failed images are reported on
    stderr by name; the status is 1 when any failed.
    check_items(items) may raise ValueError before anything runs (e.g. an output would replace an input);
    is_output(path): files of folder inputs the command wrote itself, left out (runner.collect_inputs)."""
    from fastsal_tf.api import load_model
    from fastsal_tf.common.console import Progress
    from fastsal_tf.predict import runner

    name = f"fastsal {command}"
    items, missing = runner.collect_inputs(args.paths, out_dir, args.recursive, kinds=(),
                                           is_output=is_output or runner.written_by_predict)
    if check_items is not None:
        check_items(items)
    summary = runner.start_summary(items, missing, name)
    if summary is None:
        return 1, []
    predictor = load_model(args.model, multiscale=args.multiscale, flip=args.flip)
    summary = runner.run(predictor, items, overlay=False, batch_size=args.batch_size, jobs=args.jobs,
                         progress=Progress(len(items)), summary=summary, write=step, command=name)
    print(f"{name}: {summary.done} images in {summary.seconds:.1f} s ({summary.images_per_second:.1f} images/s, "
          f"{predictor.describe()})", file=sys.stderr)
    results = [summary.results[item] for item in items if item in summary.results]
    if summary.failed:
        print(f"{name}: {summary.failure_text()}", file=sys.stderr)
        return 1, results
    return 0, results


def print_json(results) -> None:
    """A JSON list, one object per line."""
    print("[" + ",\n ".join(json.dumps(result) for result in results) + "]")
