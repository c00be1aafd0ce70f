"""`fastsal export`: a .keras model or an authors' .pth checkpoint → a LiteRT .tflite (fp32, fp16,
dynamic-range int8 or full int8) with its parity report (`<name>.parity.json`) and embedded metadata."""

from __future__ import annotations

import json

from fastsal_tf.cli.arguments import positive_int


def add_parser(subparsers):
    parser = subparsers.add_parser("export", help="export a model to LiteRT (.tflite) with parity checks")
    add_export_arguments(parser)
    parser.set_defaults(func=run)


MODEL_HELP = ("'default' / 'default-keras' (the shipped FastSal-A's Keras model), 'default-c', a .keras model file or "
              "an authors' .pth checkpoint")
OUT_HELP = "output .tflite file (the report goes to <stem>.parity.json)"
# The export settings `fastsal export` (argparse: --dashed-names) and tflite/convert.py (absl:
# --underscored_names) share, as (name, default, choices or None, help); an int default makes an int option
# >= 1.
EXPORT_OPTIONS = (
    ("mode", "fp32", ("fp32", "fp16", "dynamic", "int8"), "fp32, fp16 (float16 weights), dynamic (dynamic-range "
     "int8 weights) or int8 (full integer; needs --representative). Default fp32"),
    ("size", None, None, "fixed input HxW, multiples of 32 (default: the Keras model's own input size; 192x256 "
     "for a .pth checkpoint)"),
    ("input_dtype", "uint8", ("uint8", "float32"), "input tensor type, RGB 0-255 either way (default uint8)"),
    ("outputs", "map", None, "comma-separated subset of map, prob, logits (default map)"),
    ("map_dtype", "float32", ("float32", "uint8"), "saliency_map as float32 in [0, 1] or uint8 0-255 "
     "(default float32)"),
    ("representative", None, None, "directory of images for int8 calibration (also the default validation images)"),
    ("num_representative", 200, None, "number of representative images taken from the directory, sorted by name "
     "(default 200)"),
    ("validation", None, None, "directory of images for the parity check (default: the first num-validation "
     "representative images, else synthetic images)"),
    ("num_validation", 8, None, "number of parity images (default 8)"),
    ("normalization", "imagenet", None, "in-model normalisation for a .pth checkpoint (default imagenet: the "
     "authors' preprocessing; 'none' for pre-normalised float input)"),
    ("training_data", None, None, "metadata: what the weights were trained on"),
    ("weights_terms", None, None, "metadata: the terms of use the weights inherit from their training data"),
    ("threads", 2, None, "LiteRT threads for the parity run (default 2)"),
)


def add_export_arguments(parser):
    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--out", required=True, help=OUT_HELP)
    for name, default, choices, text in EXPORT_OPTIONS:
        parser.add_argument("--" + name.replace("_", "-"), default=default, choices=choices, help=text,
                            type=positive_int if isinstance(default, int) else None)
    parser.add_argument("--gpu-friendly", action="store_true",
                        help="replace ops the TFLite GPU delegate cannot run inside the network (the GATHER of a "
                             "PyTorch-order pixel shuffle) by equivalents it can, and check the result")
    parser.add_argument("--no-parity-check", action="store_true",
                        help="write the model even when the parity bounds are missed (experiments only)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def export_options(values, check_parity, gpu_friendly=False):
    """ExportOptions from parsed values (an argparse Namespace or absl FLAGS: model, out, EXPORT_OPTIONS)."""
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.export.options import ExportOptions

    settings = {name: getattr(values, name) for name, *_ in EXPORT_OPTIONS}
    settings["size"] = parse_size(settings["size"]) if settings["size"] else None
    return ExportOptions(values.model, values.out, check_parity=check_parity, gpu_friendly=gpu_friendly, **settings)


def run(args):
    from fastsal_tf.cli.arguments import check_out_path
    from fastsal_tf.export.options import export_from_options

    check_out_path(args.out, folder=False)
    print_result(export_from_options(export_options(args, not args.no_parity_check, args.gpu_friendly)), args.json)
    return 0


def print_result(result, as_json=False):
    summary = {"path": str(result.path), "parity_report": str(result.parity_path), "mode": result.mode,
               "size_bytes": result.size_bytes, "ops": result.ops, "parity_passed": result.parity["passed"],
               "parity": {name: {k: entry[k] for k in ("cc_mean", "cc_min", "max_abs_max")}
                          for name, entry in result.parity["outputs"].items()}}
    if "gpu_delegate" in result.parity:
        summary["gpu_delegate"] = result.parity["gpu_delegate"]
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    meta = result.metadata
    print(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {result.mode}): {meta['name']}, input "
          f"{meta['input']['dtype']} {meta['input']['shape']} RGB 0-255, outputs {', '.join(meta['outputs'])}")
    verdict = "passed" if result.parity["passed"] else "FAILED (not enforced)"
    print(f"parity vs Keras on {result.parity['num_images']} {result.parity['images']} images: {verdict} "
          f"-> {result.parity_path}")
    for name, entry in summary["parity"].items():
        print(f"  {name:16s} CC mean {entry['cc_mean']:.5f} min {entry['cc_min']:.5f}  max|d| {entry['max_abs_max']:.2e}")
    print(f"ops ({len(result.ops)}, all builtin): {', '.join(result.ops)}")
    gpu = result.parity.get("gpu_delegate")
    if gpu:
        print(f"GPU delegate: {gpu['verdict']}, {gpu['gpu_nodes']}/{gpu['total_nodes']} nodes on the GPU"
              + (f", on the CPU: {gpu['cpu_ops']}" if gpu["cpu_ops"] else ""))
