"""`fastsal center`: the attention centre of each image (where a viewer looks first), e.g. for JPEG XL's
centre-first progressive order (`cjxl --group_order 1 --center_x X --center_y Y`)."""

from __future__ import annotations

from fastsal_tf.cli.decision_common import add_common_arguments, print_json, run_job


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "center", help="the attention centre of images (pixel coordinates; cjxl flags)",
        description="Prints one line per image with its attention centre (x, y): 0-based pixel coordinates of "
                    "the displayed (EXIF-upright) image, the centre of the disk of radius 10% of the diagonal "
                    "that holds the most saliency. --json prints a list of {\"image\", \"width\", \"height\", "
                    "\"center\": [x, y]} objects. Unreadable images are reported and skipped; the exit status "
                    "is 1 when any failed.")
    add_common_arguments(parser)
    parser.add_argument("--cjxl", action="store_true",
                        help="print the matching cjxl flags (--group_order 1 --center_x X --center_y Y) instead; "
                             "with --json, add them as a \"cjxl\" list")
    parser.set_defaults(func=run)


def cjxl_flags(result: dict) -> list[str]:
    """cjxl's centre-first flags for a centre result: whole pixels inside the image."""
    x, y = result["center"]
    column = min(max(int(round(x)), 0), result["width"] - 1)
    row = min(max(int(round(y)), 0), result["height"] - 1)
    return ["--group_order", "1", "--center_x", str(column), "--center_y", str(row)]


def run(args) -> int:
    from fastsal_tf.predict.decision_job import center_step

    status, results = run_job(args, "center", center_step)
    if args.json:
        if args.cjxl:
            results = [{**result, "cjxl": cjxl_flags(result)} for result in results]
        print_json(results)
        return status
    for result in results:
        if args.cjxl:
            print(f"{result['image']}: {' '.join(cjxl_flags(result))}")
        else:
            x, y = result["center"]
            print(f"{result['image']}: center {x:.1f} {y:.1f} ({result['width']}x{result['height']})")
    return status
