"""Which model a spec means, and loading it: `resolve(spec)` → ModelRef(path, kind); `resolve_keras(spec)` and
`load_keras` for the Keras model itself (export, evaluation); `load_backend` for something to run (predictor,
teachers).

Specs: a shipped name (SHIPPED_MODELS, files in fastsal_tf/assets/), a .keras file, a LiteRT .tflite
file, an authors' PyTorch .pth / .pt checkpoint (imported without torch), or a SavedModel directory.
"""

from __future__ import annotations

import os
import pathlib
import zipfile
from typing import NamedTuple

from fastsal_tf.predict.errors import ModelNotFoundError
from fastsal_tf.runtime.outputs import PREFER_PROB

ASSETS_DIR = pathlib.Path(__file__).resolve().parents[1] / "assets"
# Names of the models shipped in fastsal_tf/assets/. "default" is FastSal-A trained at 352×480 (OSIE and
# pseudo-labelled photos; MODEL_CARD.md), as its fp32 LiteRT export: its maps equal the Keras model's and it
# runs without TensorFlow (README, "Which model"). "fast" is the first shipped FastSal-A, trained at 192×256 on
# OSIE only: over twice the throughput, less accurate on photos from other sets.
SHIPPED_MODELS = {
    "default": "fastsal_a_352x480_fp32.tflite",
    "default-a": "fastsal_a_352x480_fp32.tflite",
    "default-keras": "fastsal_a_352x480.keras",
    "default-int8": "fastsal_a_352x480_int8.tflite",
    "default-c": "fastsal_c.keras",
    "fast": "fastsal_a_fp32.tflite",
    "fast-keras": "fastsal_a.keras",
    "fast-int8": "fastsal_a_int8.tflite",
}
# The Keras model each shipped LiteRT file was exported from (what `fastsal export default` exports).
KERAS_SOURCES = {"fastsal_a_352x480_fp32.tflite": "fastsal_a_352x480.keras",
                 "fastsal_a_352x480_int8.tflite": "fastsal_a_352x480.keras",
                 "fastsal_a_fp32.tflite": "fastsal_a.keras", "fastsal_a_int8.tflite": "fastsal_a.keras"}
MODEL_SUFFIXES = {".keras": "keras", ".tflite": "litert", ".pth": "torch", ".pt": "torch"}
DEFAULT_INPUT_HW = (192, 256)
# `--backend` choices; "auto" runs each kind of model file with the first runtime of RUNTIMES.
BACKENDS = ("auto", "litert", "openvino", "keras")
# Runtimes that can run each kind of model file, the one "auto" picks first. LiteRT leads for .tflite: it is
# the reference, and OpenVINO was not reliably faster on our exports (benchmarks/speed_vs_reference.py,
# BUILD.md §5); reorder here if an idle run shows otherwise.
RUNTIMES = {"litert": ("litert", "openvino"), "keras": ("keras",), "torch": ("keras",), "savedmodel": ("savedmodel",)}


class ModelRef(NamedTuple):
    """A resolved model: its file (a directory for a SavedModel) and kind ("keras", "litert", "torch",
    "savedmodel")."""

    path: pathlib.Path
    kind: str


def how_to_give_a_model() -> str:
    return ("Give a model file instead: `fastsal predict --model PATH ...` or `fastsal_tf.load_model(PATH)`, where "
            "PATH is a .keras model, a LiteRT .tflite file or an authors' FastSal .pth checkpoint (imported on the "
            "fly; or convert it once with `fastsal import-torch CHECKPOINT.pth --out model.keras`).")


def is_saved_model(path: str | os.PathLike) -> bool:
    return (pathlib.Path(path) / "saved_model.pb").is_file()


def resolve(spec) -> ModelRef:
    """The ModelRef of a spec. Raises ModelNotFoundError (a FileNotFoundError) when the file is not there,
    ValueError naming the file for an unknown file type or a file that cannot be a model of its type
    (check_model_file)."""
    text = os.fspath(spec)
    if not text.strip():
        raise ValueError(f"an empty model name ({text!r}): {_what_to_give()}")
    if text.lower() in SHIPPED_MODELS:
        path = ASSETS_DIR / SHIPPED_MODELS[text.lower()]
        if not path.is_file():
            raise ModelNotFoundError(f"the shipped model {text!r} ({path.name}) is not in this install (looked in "
                                     f"{ASSETS_DIR}). {how_to_give_a_model()}")
        return ModelRef(path, MODEL_SUFFIXES[path.suffix])
    path = pathlib.Path(text)
    if is_saved_model(path):
        return ModelRef(path, "savedmodel")
    if path.is_dir():
        raise ValueError(f"{text}: a folder, not a model file (a SavedModel folder holds saved_model.pb)")
    kind = MODEL_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"unsupported model {text!r}: {_what_to_give()}")
    if os.path.lexists(path) and not path.exists():
        raise ValueError(f"{text}: a broken or looping symbolic link")
    if not path.exists():
        raise ModelNotFoundError(f"model file not found: {text}. {how_to_give_a_model()}")
    check_model_file(path, kind)
    return ModelRef(path, kind)


def resolve_keras(spec) -> ModelRef:
    """resolve(spec), except that a shipped LiteRT name means the Keras model it was exported from."""
    ref = resolve(spec)
    source = KERAS_SOURCES.get(ref.path.name) if os.fspath(spec).lower() in SHIPPED_MODELS else None
    return resolve(ASSETS_DIR / source) if source else ref


def _what_to_give() -> str:
    return (f"give a .keras, .tflite or .pth file, a SavedModel directory, or one of "
            f"{', '.join(sorted(SHIPPED_MODELS))}")


# The first bytes of each kind of model file: a .keras file and a zip-serialised .pth are zip archives, a
# legacy .pth starts with a pickle (protocol 2+), a .tflite is a FlatBuffer with the identifier TFL3.
_TFLITE_IDENTIFIER = (4, b"TFL3")
_PICKLE_START = b"\x80"


def check_model_file(path: pathlib.Path, kind: str) -> None:
    """ValueError naming the file when `path` cannot be a model of `kind` (not a regular file, an empty file, a
    .keras that is no Keras archive, a .tflite that is no LiteRT FlatBuffer, a .pth that is neither a zip
    nor a pickle). Reads a few bytes only; what the file holds is checked when it is loaded."""
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file (a folder, a device or a pipe), not a model file")
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError as error:
        raise ValueError(f"{path}: cannot read the model file ({error.strerror or error})") from None
    if not head:
        raise ValueError(f"{path}: the model file is empty")
    if kind == "keras":
        try:
            with zipfile.ZipFile(path) as archive:
                has_config = "config.json" in archive.namelist()
        except (zipfile.BadZipFile, OSError):
            has_config = False
        if not has_config:
            raise ValueError(f"{path}: not a Keras model file (a .keras file is a zip archive with config.json)")
    elif kind == "litert":
        offset, identifier = _TFLITE_IDENTIFIER
        if head[offset:offset + len(identifier)] != identifier:
            raise ValueError(f"{path}: not a LiteRT model file (no TFL3 FlatBuffer identifier)")
    elif kind == "torch" and not (zipfile.is_zipfile(path) or head.startswith(_PICKLE_START)):
        raise ValueError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle)")


def load_keras(ref: ModelRef, *, input_size: tuple[int, int] | None = None, variant: str | None = None,
               heads: tuple[str, ...] = ("prob",), normalization: str = "imagenet", role: str = "model"):
    """The Keras model of a "keras" or "torch" ModelRef. A .pth checkpoint is imported at input_size
    (default 192x256, multiples of 32) with the given heads and in-model normalisation; `variant` ("A" /
    "C") checks the detected one. ValueError naming the file for an unreadable file or a hint-pretraining
    checkpoint."""
    from fastsal_tf.common.console import import_tensorflow_quietly

    import_tensorflow_quietly()
    if ref.kind == "keras":
        import keras

        import fastsal_tf.models  # noqa: F401  (registers FastSal and its layers)

        try:
            return keras.saving.load_model(ref.path, compile=False)
        except (ValueError, OSError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"{ref.path}: cannot load the Keras {role} ({error})") from error
    if ref.kind != "torch":
        raise ValueError(f"{ref.path}: a {ref.kind} model is no Keras model (give a .keras file or a .pth checkpoint)")
    from fastsal_tf.models.fastsal import check_input_shape
    from fastsal_tf.weights.torch_import import import_torch_checkpoint

    height, width = input_size or DEFAULT_INPUT_HW
    check_input_shape((height, width, 3))
    model = import_torch_checkpoint(ref.path, variant, (height, width, 3), heads=heads, normalization=normalization)
    if model.name == "fastsal_hint":
        raise ValueError(f"{ref.path}: a hint-pretraining checkpoint, not a saliency model (give FastSal-A or -C)")
    return model


def runtime_for(ref: ModelRef, backend: str = "auto") -> str:
    """The runtime ("litert", "openvino", "keras", "savedmodel") that runs `ref` for a `backend` choice
    (BACKENDS): "auto" gives the first of RUNTIMES[ref.kind]; ValueError naming the file when the asked
    backend cannot run that kind of file."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    runtimes = RUNTIMES[ref.kind]
    if backend == "auto":
        return runtimes[0]
    if backend not in runtimes:
        runs = "a .tflite file (export one with `fastsal export`)" if backend in RUNTIMES["litert"] else \
            "a .keras model or an authors' .pth checkpoint"
        raise ValueError(f"{ref.path}: backend {backend!r} runs {runs}, not a {ref.kind} model")
    return backend


def load_backend(spec, *, input_size: tuple[int, int] | None = None, num_threads: int | None = None,
                 variant: str | None = None, prefer: tuple[str, ...] = PREFER_PROB, wanted: str = "",
                 role: str = "model", flexible_size: tuple[int, int] = DEFAULT_INPUT_HW, backend: str = "auto",
                 multiscale: bool = False, flip: bool = False):
    """(Backend, ModelRef) for a spec (see resolve). input_size: the size to run at (a .pth import, a
    flexible-size model; a fixed-size model must match it); flexible_size: the size of a flexible-size
    model when input_size is None. num_threads: LiteRT / OpenVINO threads (per interpreter). prefer /
    wanted / role: which output to use (runtime.outputs.select_output). backend: BACKENDS (runtime_for);
    "openvino" needs the optional openvino package (MissingBackendError otherwise). multiscale: run the
    FastSal at its own size and 1.5× it and average the maps (load_multiscale); flip: average each map with
    the mirrored map of the mirrored input (load_multiscale)."""
    from fastsal_tf.runtime import backends

    if multiscale or flip:
        if input_size is not None:
            raise ValueError("input_size does not apply to multi-scale or flip-averaged prediction (it runs the "
                             "network at its own size, and 1.5x it with multi-scale)")
        return load_multiscale(spec, variant=variant, backend=backend, prefer=prefer, wanted=wanted, role=role,
                               multiscale=multiscale, flip=flip)
    ref = resolve(spec)
    choice = {"prefer": prefer, "wanted": wanted, "role": role}
    if runtime_for(ref, backend) == "openvino":
        from fastsal_tf.runtime.openvino import OpenVINOBackend

        return OpenVINOBackend(ref.path, num_threads, **choice), ref
    if ref.kind == "litert":
        if input_size is not None:
            raise ValueError(f"{ref.path}: a .tflite model has a fixed input size; input_size does not apply")
        return backends.LiteRTBackend(ref.path, num_threads, **choice), ref
    if ref.kind == "savedmodel":
        from fastsal_tf.common.console import import_tensorflow_quietly

        import_tensorflow_quietly()
        return backends.SavedModelBackend(ref.path, input_size, flexible_size=flexible_size, **choice), ref
    model = load_keras(ref, input_size=input_size or flexible_size, variant=variant, role=role)
    if ref.kind == "torch":
        input_size = None  # built at that size
    return backends.KerasBackend(model, input_size, str(ref.path), flexible_size=flexible_size, **choice), ref


def load_multiscale(spec, *, variant: str | None = None, backend: str = "auto", prefer: tuple[str, ...] = PREFER_PROB,
                    wanted: str = "", role: str = "model", multiscale: bool = True, flip: bool = False):
    """(KerasBackend, ModelRef) of a FastSal spec wrapped by fastsal_tf.models.multiscale.build_multiscale:
    with multiscale, the network at its own size and 1.5× it (e.g. 192×256 and 288×384; input at the larger
    size), else at its own size only; flip adds the mirrored pass of each; the output is the mean of the
    probability maps. It runs the Keras model: a shipped LiteRT name means the Keras model it was exported
    from (resolve_keras); another .tflite file, a SavedModel or a backend other than auto / keras is a
    ValueError naming the file."""
    from fastsal_tf.models.multiscale import build_multiscale, own_size
    from fastsal_tf.runtime import backends

    ref = resolve_keras(spec)
    if ref.kind not in ("keras", "torch"):
        raise ValueError(f"{ref.path}: multi-scale and flip-averaged prediction run a Keras FastSal (a .keras file, "
                         f"an authors' .pth or a shipped name), not a {ref.kind} model")
    if backend not in ("auto", "keras"):
        raise ValueError(f"{ref.path}: multi-scale and flip-averaged prediction run on the Keras backend, "
                         f"not {backend!r}")
    network = load_keras(ref, variant=variant, role=role)
    model = build_multiscale(network, None if multiscale else [own_size(network)], flip=flip)
    how = "multi-scale, flip-averaged" if multiscale and flip else "multi-scale" if multiscale else "flip-averaged"
    return backends.KerasBackend(model, None, f"{ref.path}, {how}", prefer=prefer, wanted=wanted, role=role), ref
