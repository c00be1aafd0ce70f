"""`fastsal export`: a .keras model or an authors' .pth checkpoint → a LiteRT .tflite (fp32, fp16,
dynamic-range int8 or full int8) with its parity report (`<name>.parity.json`) and embedded metadata."""

from __future__ import annotations

import json
import pathlib


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


def load_model(path, size, normalization="imagenet"):
    """A shipped model name ("default", "default-c"), a .keras file (keras.saving.load_model) or an
    authors' .pth (import_torch_checkpoint, logits head)."""
    from fastsal_tf.api import SHIPPED_MODELS, resolve_model

    if str(path).lower() in SHIPPED_MODELS:
        path, _ = resolve_model(path)
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    if path.suffix == ".keras":
        import keras

        import fastsal_tf.models.layers  # noqa: F401 — registers the custom layers
        return keras.saving.load_model(path)
    if path.suffix in (".pth", ".pt", ".tar"):
        from fastsal_tf.weights.torch_import import import_torch_checkpoint

        model = import_torch_checkpoint(path, None, (*size, 3), heads=("logits",), normalization=normalization)
        if model.name == "fastsal_hint":
            raise ValueError(f"{str(path)!r} is a hint-pretraining checkpoint (no saliency head); export needs A or C")
        return model
    raise ValueError(f"model must be a .keras file or a .pth checkpoint, got {str(path)!r}")


def export_from_options(model_path, out, mode="fp32", size="192x256", input_dtype="uint8", outputs="map",
                        map_dtype="float32", representative=None, num_representative=200, validation=None,
                        num_validation=8, normalization="imagenet", training_data=None, threads=2, check_parity=True,
                        gpu_friendly=False):
    """Shared by `fastsal export` and tflite/convert.py: loads the model and images, calls export_tflite."""
    from fastsal_tf.cli.info import parse_size
    from fastsal_tf.export import export_tflite
    from fastsal_tf.export.images import load_images
    from fastsal_tf.export.litert import check_input_size, parse_outputs

    input_size = check_input_size(parse_size(size) if isinstance(size, str) else size)
    outputs = parse_outputs(outputs)
    if not str(out).endswith(".tflite"):
        raise ValueError(f"--out must end in .tflite, got {str(out)!r}")
    if mode == "int8" and not representative:
        raise ValueError("int8 export needs --representative DIR (calibration images, default 200 of them)")
    images = load_images(representative, input_size, num_representative) if representative else None
    checks = load_images(validation, input_size, num_validation) if validation else None
    model = load_model(model_path, input_size, normalization)
    metadata = {"source_file": pathlib.Path(model_path).name}
    if training_data:
        metadata["training_data"] = training_data
    return export_tflite(model, out, mode=mode, input_size=input_size, input_dtype=input_dtype, outputs=outputs,
                         map_dtype=map_dtype, representative_images=images, validation_images=checks,
                         num_validation=num_validation, metadata=metadata, check_parity=check_parity,
                         num_threads=threads, gpu_friendly=gpu_friendly)


def run(args):
    result = export_from_options(args.model, args.out, args.mode, args.size, args.input_dtype, args.outputs,
                                 args.map_dtype, args.representative, args.num_representative, args.validation,
                                 args.num_validation, args.normalization, args.training_data, args.threads,
                                 not args.no_parity_check, args.gpu_friendly)
    print_result(result, args.json)
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


def print_tflite_info(path, as_json=False):
    """`fastsal info model.tflite`: signature tensors, ops and embedded metadata."""
    from fastsal_tf.export import describe_tflite

    info = describe_tflite(path)
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['size_bytes']:,} bytes, signatures {info['signatures']}")
    for kind in ("inputs", "outputs"):
        for tensor in info[kind]:
            scale, zero = tensor["quantization"]
            quant = f" (scale {scale:.6g}, zero point {zero})" if scale else ""
            print(f"  {kind[:-1]:6s} {tensor['name']:16s} {tensor['dtype']:7s} {tensor['shape']}{quant}")
    print(f"ops ({len(info['ops'])}): {', '.join(info['ops'])}")
    if info["metadata"] is None:
        print("metadata: none (not a fastsal export)")
    else:
        print("metadata:")
        print(json.dumps(info["metadata"], indent=2))
    return 0
