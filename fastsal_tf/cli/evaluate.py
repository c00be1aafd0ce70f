"""`fastsal evaluate`: score a model (or a folder of maps) and the center bias on a dataset split."""

from __future__ import annotations

import sys

from fastsal_tf.cli.arguments import BLUR_HELP, blur_sigma, check_out_path, input_size, positive_float, positive_int


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate", help="score a model or a folder of maps on a dataset (Table-I style report)",
        description="Scores the model and a center-bias baseline on a dataset split with the eight MIT benchmark "
                    "metrics (AUC-Judd, AUC-Borji, sAUC, NSS, CC, KLD, SIM, IG) and writes report.md, "
                    "report.csv, report.json (with the protocol) and per_image.csv into --out. Protocol 'mit' "
                    "scores the model's probability maps at the image size; 'authors' applies the FastSal "
                    "paper's eval.py post-processing to the network logits first (comparable with the paper).")
    parser.add_argument("--model", required=True,
                        help="'default', 'default-keras', 'default-c', a .keras, .tflite or authors' .pth file, or a "
                             "folder of precomputed maps (<id>.npy/.png/.jpg or <id>_saliency.<ext>)")
    parser.add_argument("--dataset", required=True, help="dataset name (osie, eyecrowd, hamburg_cv2, rss2015, salicon, cat2000, folder, ...)")
    parser.add_argument("--data-dir", required=True, help="dataset root folder")
    parser.add_argument("--split", default=None,
                        help="split to evaluate (e.g. validation; default: the dataset's first)")
    parser.add_argument("--split-file", default=None, help="split JSON of osie, eyecrowd or hamburg_cv2 (default: the packaged split)")
    parser.add_argument("--protocol", choices=["mit", "authors"], default="mit",
                        help="mit (ours, default) or authors (the paper's eval.py map post-processing)")
    parser.add_argument("--out", default="evaluation", help="report folder (default ./evaluation)")
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N images")
    parser.add_argument("--sigma", type=positive_float, default=None, metavar="PX",
                        help="density Gaussian sigma in stored-image pixels (default: 1 degree where known, OSIE 24)")
    parser.add_argument("--baseline-split", default="auto",
                        help="split whose mean density is the center bias; 'none' for a centred Gaussian "
                             "(default auto: train when the dataset has it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random negatives and jitter (default 0)")
    parser.add_argument("--size", type=input_size, default=None, metavar="HxW",
                        help="network input for a .pth import (default 192x256)")
    parser.add_argument("--blur", type=blur_sigma, default=0.0, metavar="SIGMA",
                        help=f"{BLUR_HELP}; a model under protocol mit only, as `fastsal predict --blur`")
    parser.set_defaults(func=run)


def run(args) -> int:
    from fastsal_tf.common.console import Progress
    from fastsal_tf.evaluation import markdown_table, run_evaluation, write_reports

    check_out_path(args.out, folder=True)

    report = run_evaluation(args.model, args.dataset, args.data_dir, split=args.split, protocol=args.protocol,
                            sigma_px=args.sigma, limit=args.limit, baseline_split=args.baseline_split,
                            split_file=args.split_file, seed=args.seed,
                            input_size=args.size, blur=args.blur,
                            progress=Progress())
    paths = write_reports(report, args.out)
    print(markdown_table(report))
    protocol = report.protocol
    print(f"fastsal evaluate: {protocol['images']} images of {args.dataset}"
          f"{'/' + args.split if args.split else ''}, protocol {args.protocol}, {protocol['seconds']:.1f} s "
          f"({protocol['images'] / max(protocol['seconds'], 1e-9):.2f} images/s) -> {paths['report.md'].parent}",
          file=sys.stderr)
    return 0
