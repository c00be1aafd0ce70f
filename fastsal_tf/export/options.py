"""`ExportOptions`: everything `fastsal export` and tflite/convert.py ask for, and `export_from_options`,
which loads the model and the image sets and calls `export_tflite`."""

from __future__ import annotations

import dataclasses
import pathlib

from fastsal_tf.export.spec import ExportError


@dataclasses.dataclass
class ExportOptions:
    """One export. model: a shipped name ("default", "default-c"), a .keras file or an authors' .pth
    checkpoint; out: the .tflite to write (its report goes to <stem>.parity.json); size: (height, width),
    multiples of 32 (None: the Keras model's own input size, 192x256 for a checkpoint); outputs: "map,prob" or a sequence of map / prob / logits; representative / validation:
    image folders (calibration images for int8, parity images); normalization: the in-model normalisation
    of a .pth import; training_data, weights_terms: metadata (what the weights learned from, the terms of
    use they inherit); threads: LiteRT threads of the parity run; check_parity:
    refuse to write when a parity bound is missed; gpu_friendly: replace ops the GPU delegate cannot run."""

    model: str
    out: str
    mode: str = "fp32"
    size: tuple[int, int] | None = None
    input_dtype: str = "uint8"
    outputs: str | tuple = "map"
    map_dtype: str = "float32"
    representative: str | None = None
    num_representative: int = 200
    validation: str | None = None
    num_validation: int = 8
    normalization: str = "imagenet"
    training_data: str | None = None
    weights_terms: str | None = None
    threads: int = 2
    check_parity: bool = True
    gpu_friendly: bool = False


def load_export_model(spec, size, normalization="imagenet"):
    """The Keras model to export: a shipped name (the Keras model behind it), a .keras file, or an authors' .pth
    imported at size (height, width; None: 192x256) with a logits head and the given in-model normalisation.
    ValueError naming the file."""
    from fastsal_tf.runtime.resolve import load_keras, resolve_keras

    try:
        ref = resolve_keras(spec)
    except FileNotFoundError as error:
        raise ValueError(str(error)) from None
    if ref.kind not in ("keras", "torch"):
        raise ValueError(f"model must be a .keras file or a .pth checkpoint, got {str(spec)!r}")
    return load_keras(ref, input_size=tuple(size) if size else None, heads=("logits",), normalization=normalization)


def _own_input_size(model) -> tuple[int, int]:
    """(height, width) of a Keras model built at a fixed size, else the default 192x256 (a flexible-size
    model, or one without a defined input, which export_tflite then names)."""
    from fastsal_tf.export.spec import DEFAULT_INPUT_SIZE

    try:
        height, width = model.input_shape[1:3]
    except (AttributeError, ValueError, TypeError):
        return DEFAULT_INPUT_SIZE
    return (height, width) if height and width else DEFAULT_INPUT_SIZE


def export_from_options(options: ExportOptions):
    """Checks the options, loads the model and images, exports; returns the ExportResult."""
    from fastsal_tf.export.images import load_images
    from fastsal_tf.export.litert import check_input_size, export_tflite, parse_outputs

    if options.size is not None:
        check_input_size(options.size)
    outputs = parse_outputs(options.outputs)
    if not str(options.out).endswith(".tflite"):
        raise ValueError(f"--out must end in .tflite, got {str(options.out)!r}")
    if options.mode == "int8" and not options.representative:
        raise ValueError("int8 export needs --representative DIR (calibration images, default 200 of them)")
    model = load_export_model(options.model, options.size, options.normalization)
    input_size = check_input_size(options.size or _own_input_size(model))
    images = (load_images(options.representative, input_size, options.num_representative)
              if options.representative else None)
    checks = load_images(options.validation, input_size, options.num_validation) if options.validation else None
    metadata = {"source_file": pathlib.Path(options.model).name}
    for key in ("training_data", "weights_terms"):
        if getattr(options, key):
            metadata[key] = getattr(options, key)
    try:
        return export_tflite(model, options.out, mode=options.mode, input_size=input_size,
                             input_dtype=options.input_dtype, outputs=outputs, map_dtype=options.map_dtype,
                             representative_images=images, validation_images=checks,
                             num_validation=options.num_validation, metadata=metadata,
                             check_parity=options.check_parity, num_threads=options.threads,
                             gpu_friendly=options.gpu_friendly)
    except ExportError as error:
        if type(error) is ExportError and str(error).startswith("the model"):  # graph.py: name the file
            raise ExportError(f"{options.model}: {error}") from None
        raise
