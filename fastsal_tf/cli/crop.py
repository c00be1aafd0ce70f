"""`fastsal crop`: crops of given aspect ratios that keep the salient part of each image."""

from __future__ import annotations

import argparse

from fastsal_tf.cli.arguments import check_out_path, unit_fraction
from fastsal_tf.cli.decision_common import add_common_arguments, print_json, run_job

DEFAULT_ASPECTS = "1:1,16:9,9:16"


def aspect_list(text):
    """--aspect value: comma-separated W:H ratios → list of Aspect."""
    from fastsal_tf.predict.decisions import parse_aspect

    parts = [part.strip() for part in text.split(",")]
    if not any(parts) or not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated W:H ratios such as 1:1,16:9, got {text!r}")
    try:
        return [parse_aspect(part) for part in parts]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "crop", help="salient crops of images for aspect ratios (boxes; cropped images with --out)",
        description="For each image and aspect ratio, the largest box of that ratio inside the image (times "
                    "--scale), placed to hold the most saliency. Prints one line per image; --json prints a "
                    "list of {\"image\", \"width\", \"height\", \"crops\": [{\"aspect\": \"16:9\", \"box\": "
                    "[x0, y0, x1, y1]}, ...]} objects (integer pixels of the displayed image, x1 / y1 "
                    "exclusive). --out DIR also writes the crops as <stem>_crop_16x9.jpg (JPEG sources, "
                    "re-encoded at their own quality) or .png (other formats, lossless), all crops of an "
                    "image or none; a crop never replaces an input, and crops written earlier (marked "
                    "'fastsal crop') are not taken as inputs. Unreadable images and images too small for a "
                    "ratio are reported and skipped (nothing written for them); the exit status is 1 when "
                    "any failed.")
    add_common_arguments(parser)
    parser.add_argument("--aspect", type=aspect_list, default=aspect_list(DEFAULT_ASPECTS), metavar="W:H,...",
                        help=f"aspect ratios, comma-separated (default {DEFAULT_ASPECTS})")
    parser.add_argument("--scale", type=unit_fraction, default=1.0, metavar="S",
                        help="box size as a fraction of the largest box of the ratio, 0 < S <= 1 (default 1)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="also write the cropped images to DIR (subfolders of folder inputs mirrored)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from fastsal_tf.predict.crop_files import written_by_crop
    from fastsal_tf.predict.decision_job import CropStep, crop_paths
    from fastsal_tf.predict.runner import written_by_predict

    if args.out is not None:
        check_out_path(args.out, folder=True)

    def check_items(items):
        inputs = {item.source.resolve() for item in items}
        for item in items:
            for path in crop_paths(item, args.aspect, ".jpg") + crop_paths(item, args.aspect, ".png"):
                if path.resolve() in inputs:
                    raise ValueError(f"refusing to run: the crop {path} (for {item.source}) would overwrite an "
                                     f"input image; choose another --out folder")

    step = CropStep(args.aspect, args.scale, write_files=args.out is not None)
    status, results = run_job(args, "crop", step, args.out, check_items if args.out is not None else None,
                              is_output=lambda path: written_by_predict(path) or written_by_crop(path))
    if args.json:
        print_json(results)
        return status
    for result in results:
        boxes = ", ".join(f"{crop['aspect']} {crop['box']}" for crop in result["crops"])
        print(f"{result['image']} ({result['width']}x{result['height']}): {boxes}")
    return status
