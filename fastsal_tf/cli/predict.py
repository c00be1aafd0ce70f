"""`fastsal predict`: saliency maps and overlays for images, at their original size."""

from __future__ import annotations

import argparse
import os
import sys

from fastsal_tf.cli.arguments import (BLUR_HELP, FLIP_HELP, MODEL_HELP, MULTISCALE_HELP, blur_sigma, check_out_path,
                                      input_size, non_negative_int, positive_int)
from fastsal_tf.runtime.resolve import BACKENDS

DEFAULT_OUT = "saliency"


def _weight(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_parser(subparsers):
    from fastsal_tf.predict.images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE
    from fastsal_tf.predict.postprocess import COLORMAPS, DEFAULT_COLORMAP
    from fastsal_tf.predict.runner import OVERLAY_KINDS

    parser = subparsers.add_parser(
        "predict", help="saliency maps and overlays for images, at their original size",
        description="Writes, for each image <stem>.<ext>: <stem>_saliency.png (grayscale at the original size: the "
                    "probability map scaled so that its maximum is 255 — not min-max, so the relative level is "
                    "kept; lossless), <stem>_overlay.jpg (colour map over the image; --overlay-format png: "
                    "<stem>_overlay.png) and, with --npy, <stem>_saliency.npy "
                    "(float64 probability map summing to 1). Subfolders of folder inputs are mirrored; inputs "
                    "are never overwritten. Unreadable images are reported and skipped; the exit status is 1 "
                    "when any failed.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    parser.add_argument("--model", default="default", help=MODEL_HELP)
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="runtime: auto (LiteRT for .tflite, Keras for .keras / .pth), litert, openvino (a "
                             ".tflite with the optional openvino package: pip install 'fastsal-tf[openvino]') "
                             "or keras (default: auto)")
    parser.add_argument("--multiscale", action="store_true", help=MULTISCALE_HELP)
    parser.add_argument("--flip", action="store_true", help=FLIP_HELP)
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders of folder inputs")
    parser.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch",
                        help="stretch to the network input (paper, default) or letterbox (keep the aspect ratio)")
    parser.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=True,
                        help="write <stem>_overlay.jpg (default: yes)")
    parser.add_argument("--overlay-format", choices=sorted(OVERLAY_KINDS), default="jpg",
                        help="overlay file format: jpg (quality 90, default) or png (lossless, larger, slower)")
    parser.add_argument("--npy", action="store_true", help="also write the probability map as <stem>_saliency.npy")
    parser.add_argument("--blur", type=blur_sigma, default=0.0, metavar="SIGMA", help=BLUR_HELP)
    parser.add_argument("--center-bias", type=_weight, default=0.0, metavar="W",
                        help="blend weight of a centred Gaussian (sd 0.25 of height/width) into the map (default 0)")
    parser.add_argument("--colormap", choices=COLORMAPS, default=DEFAULT_COLORMAP,
                        help=f"overlay colour map (default {DEFAULT_COLORMAP})")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per model call, Keras (default 8)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="worker threads for decode/encode (LiteRT: parallel interpreters); default: CPU cores")
    parser.add_argument("--size", type=input_size, default=None, metavar="HxW",
                        help="network input for a .pth import or a flexible-size .keras model (default 192x256)")
    parser.add_argument("--max-side", type=non_negative_int, default=DEFAULT_MAX_SIDE, metavar="PX",
                        help=f"outputs of images longer than this are written downscaled, with a warning "
                             f"(default {DEFAULT_MAX_SIDE}; 0: no cap)")
    parser.add_argument("--max-pixels", type=non_negative_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"refuse images whose decode needs more pixels (JPEGs are decoded at reduced scale "
                             f"first; default {DEFAULT_MAX_PIXELS:,}; 0: no limit)")
    parser.set_defaults(func=run, lazy_tensorflow=True)


def run(args) -> int:
    import warnings

    from PIL import Image

    from fastsal_tf.api import load_model
    from fastsal_tf.common.console import Progress
    from fastsal_tf.predict import runner

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes are bounded by --max-pixels
    check_out_path(args.out, folder=True)
    if args.flip and args.size is not None:
        raise ValueError("--size does not apply with --flip (it runs the network at its own size)")
    if args.multiscale and args.size is not None:
        raise ValueError("--size does not apply with --multiscale (it runs the network at its own size and 1.5x it: "
                         "352x480 and 512x704 for default, 192x256 and 288x384 for fast)")
    kinds = (["saliency"] + ([runner.OVERLAY_KINDS[args.overlay_format]] if args.overlay else [])
             + (["npy"] if args.npy else []))
    items, missing = runner.collect_inputs(args.paths, args.out, args.recursive, kinds)
    summary = runner.start_summary(items, missing, "fastsal predict")
    if summary is None:
        return 1
    predictor = load_model(args.model, resize=args.resize, blur=args.blur, center_bias=args.center_bias,
                           max_side=args.max_side, max_pixels=args.max_pixels,
                           input_size=args.size,
                           num_threads=None, backend=args.backend, multiscale=args.multiscale, flip=args.flip)
    print(f"fastsal predict: {len(items)} images -> {args.out}{os.sep} ({predictor.describe()}, resize "
          f"{args.resize})", file=sys.stderr)
    progress = Progress(len(items))
    summary = runner.run(predictor, items, overlay=args.overlay, npy=args.npy, batch_size=args.batch_size,
                         jobs=args.jobs, colormap=args.colormap, overlay_format=args.overlay_format,
                         progress=progress, summary=summary)
    print(f"fastsal predict: {summary.done} images in {summary.seconds:.1f} s ({summary.images_per_second:.1f} "
          f"images/s) -> {args.out}{os.sep}", file=sys.stderr)
    if summary.failed:
        print(f"fastsal predict: {summary.failure_text()}", file=sys.stderr)
        return 1
    return 0
