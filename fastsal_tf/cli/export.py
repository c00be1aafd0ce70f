"""`fastsal export`: a .keras model or an authors' .pth checkpoint → a LiteRT .tflite (fp32, fp16,
dynamic-range int8 or full int8) with its parity report (`<name>.parity.json`) and embedded metadata."""

from __future__ import annotations

import json


def add_parser(subparsers):
    parser = subparsers.add_parser("export", help="export a model to LiteRT (.tflite) with parity checks")
    add_export_arguments(parser)
    parser.set_defaults(func=run)


def add_export_arguments(parser):
    parser.add_argument("model", help="'default' / 'default-c' (the shipped models), a .keras model file or an "
                        "authors' .pth checkpoint")
    parser.add_argument("--mode", choices=["fp32", "fp16", "dynamic", "int8"], default="fp32",
                        help="fp32, fp16 (float16 weights), dynamic (dynamic-range int8 weights) or int8 (full "
                             "integer; needs --representative). Default fp32")
    parser.add_argument("--out", required=True, help="output .tflite file (the report goes to <stem>.parity.json)")
    parser.add_argument("--size", default="192x256", help="fixed input HxW, multiples of 32 (default 192x256)")
    parser.add_argument("--input-dtype", choices=["uint8", "float32"], default="uint8",
                        help="input tensor type, RGB 0-255 either way (default uint8)")
    parser.add_argument("--outputs", default="map", help="comma-separated subset of map, prob, logits (default map)")
    parser.add_argument("--map-dtype", choices=["float32", "uint8"], default="float32",
                        help="saliency_map as float32 in [0, 1] or uint8 0-255 (default float32)")
    parser.add_argument("--representative", metavar="DIR", help="directory of images for int8 calibration "
                        "(also the default validation images)")
    parser.add_argument("--num-representative", type=int, default=200,
                        help="number of representative images taken from DIR, sorted by name (default 200)")
    parser.add_argument("--validation", metavar="DIR", help="directory of images for the parity check (default: the "
                        "first --num-validation representative images, else synthetic images)")
    parser.add_argument("--num-validation", type=int, default=8, help="number of parity images (default 8)")
    parser.add_argument("--normalization", default="imagenet", help="in-model normalisation for a .pth checkpoint "
                        "(default imagenet: the authors' preprocessing; 'none' for pre-normalised float input)")
    parser.add_argument("--training-data", help="metadata: what the weights were trained on")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads for the parity run (default 2)")
    parser.add_argument("--gpu-friendly", action="store_true",
                        help="replace ops the TFLite GPU delegate cannot run inside the network (the GATHER of a "
                             "PyTorch-order pixel shuffle) by equivalents it can, and check the result")
    parser.add_argument("--no-parity-check", action="store_true",
                        help="write the model even when the parity bounds are missed (experiments only)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args):
    from fastsal_tf.cli.arguments import parse_size
    from fastsal_tf.export.options import ExportOptions, export_from_options

    options = ExportOptions(
        args.model, args.out, mode=args.mode, size=parse_size(args.size), input_dtype=args.input_dtype,
        outputs=args.outputs, map_dtype=args.map_dtype, representative=args.representative,
        num_representative=args.num_representative, validation=args.validation, num_validation=args.num_validation,
        normalization=args.normalization, training_data=args.training_data, threads=args.threads,
        check_parity=not args.no_parity_check, gpu_friendly=args.gpu_friendly)
    print_result(export_from_options(options), args.json)
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
