"""The bad-input cases of issue 17, defined once: tests/test_bad_input_corpus.py runs each as a test and
benchmarks/bad_input_battery.py runs them all as a battery with outcome counts.

Every file a case needs is generated on the fly (no binary blobs): `make_shared(folder)` writes the files
all cases share (bad model files, a good image, a tiny folder dataset), and a case's own `setup` writes into
its empty work folder. A case runs one `fastsal` command in this process (cwd = its work folder, so a
stray default output folder is seen) or one Python API call, and `run_case` returns an Outcome that checks
the rules of the issue:
  - the exit status is the one expected (2: refused; 1: some images failed; 0: ran, maybe with a warning),
    or the API raised the expected error / warned;
  - no traceback (no exception escaped `fastsal_tf.cli.main`, no "Traceback" printed);
  - the message names the file or flag at fault (`named`);
  - no partial output: after the run, the work folder holds exactly the files it held before plus the
    case's `outputs` (relative paths), and no hidden temporary file;
  - no input changed (every file of the shared folder and of the work folder keeps its bytes);
  - nothing silently wrong: a bad input is never accepted with status 0, every expected output is there,
    and a case's own `check` (e.g. a float image read on the right scale) finds no problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import pathlib
import pickle
import signal
import traceback
import warnings
import zipfile
from typing import Callable

import numpy as np
from PIL import Image

from predict_helpers import HW, noise

# ------------------------------------------------------------------------------------------ shared files

# Bad model files: name → how to make it (None: not created, a missing file).
BAD_MODELS = {
    "noconfig.keras": lambda p: zipfile.ZipFile(p, "w").writestr("model.weights.h5", b"x"),
    "random.keras": lambda p: p.write_bytes(np.random.default_rng(1).bytes(2000)),
    "empty.keras": lambda p: p.write_bytes(b""),
    "folder.keras": lambda p: p.mkdir(),
    "loop.keras": lambda p: p.symlink_to(p.name),
    "fifo.keras": lambda p: os.mkfifo(p),
    "missing.keras": None,
    "random.tflite": lambda p: p.write_bytes(np.random.default_rng(2).bytes(2000)),
    "empty.tflite": lambda p: p.write_bytes(b""),
    "text.tflite": lambda p: p.write_text("hello, not a model\n"),
    "emptydict.pth": lambda p: p.write_bytes(pickle.dumps({}, protocol=2)),
    "random.pth": lambda p: p.write_bytes(np.random.default_rng(3).bytes(2000)),
    "empty.pth": lambda p: p.write_bytes(b""),
    "notes.txt": lambda p: p.write_text("not a model"),
    "plainfolder": lambda p: p.mkdir(),
}
MODEL_NAMES = sorted(BAD_MODELS) + ["other.keras"]  # other.keras: a valid Keras model that is no FastSal


def png_bytes(seed=5, hw=(40, 50)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise(*hw, seed=seed)).save(buffer, "PNG")
    return buffer.getvalue()


class _Planted:
    """Pickles as a call that creates the file "planted" in the working folder: a checkpoint carrying code."""

    def __reduce__(self):
        return open, ("planted", "w")


def _planted_pth(zipped):
    """A .pth writer whose pickle would create ./planted when unpickled (legacy or zip serialisation)."""
    def make(path):
        payload = pickle.dumps({"conv.weight": _Planted()}, protocol=2)
        if not zipped:
            path.write_bytes(payload)
            return
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", payload)
            archive.writestr("archive/version", "3\n")
    return make


def _float_tiff(value):
    """A float (mode F) TIFF writer whose pixel (3, 4) is `value` (NaN, inf), the rest in [0, 1]."""
    def make(path):
        array = np.random.default_rng(6).random(HW, dtype=np.float32)
        array[3, 4] = value
        Image.fromarray(array, "F").save(path)
    return make


def _huge_png(path):
    """A PNG header claiming 60000x60000 RGB pixels (a decompression bomb), with one empty data chunk."""
    import struct
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _multi_frame(path):
    frames = [Image.fromarray(noise(*HW, seed=s)) for s in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def make_shared(folder: pathlib.Path) -> pathlib.Path:
    """Writes the files the cases share into folder: BAD_MODELS, other.keras, image.png (a good image) and
    ds/ (a one-image folder dataset for `evaluate`: images/x.png, maps/x.png). Returns folder."""
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    for name, make in BAD_MODELS.items():
        if make is not None:
            make(folder / name)
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(1, 3, padding="same")]).save(
        folder / "other.keras")
    Image.fromarray(noise(*HW)).save(folder / "image.png")
    (folder / "ds" / "images").mkdir(parents=True)
    (folder / "ds" / "maps").mkdir()
    Image.fromarray(noise(*HW, seed=1)).save(folder / "ds" / "images" / "x.png")
    target = np.zeros(HW, np.uint8)
    target[20:30, 30:40] = 255
    Image.fromarray(target).save(folder / "ds" / "maps" / "x.png")
    return folder


@dataclasses.dataclass
class Env:
    """Where a case runs: `shared` (make_shared), `work` (the case's own empty folder, the cwd of a CLI case),
    `stub` (a LiteRT model that runs fast: tests/predict_helpers.make_stub_tflite) and `keras` (a tiny
    FastSal-A .keras at HW)."""

    shared: pathlib.Path
    work: pathlib.Path
    stub: pathlib.Path
    keras: pathlib.Path

    @property
    def out(self) -> pathlib.Path:
        return self.work / "out"

    @property
    def inputs(self) -> pathlib.Path:
        return self.work / "in"

    def predictor(self):
        """The tiny Keras model loaded through the API (loaded once per process)."""
        return _load(str(self.keras))


_PREDICTORS: dict = {}


def _load(spec: str):
    if spec not in _PREDICTORS:
        import fastsal_tf

        _PREDICTORS[spec] = fastsal_tf.load_model(spec)
    return _PREDICTORS[spec]


# ---------------------------------------------------------------------------------------------- cases

@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input. CLI cases give `argv(env)` (after `fastsal`) and the expected exit `status`; API cases
    give `call(env)` and `raises` (an exception class) or `warns` (a warning class) instead. `named`: text
    the message must contain. `setup(env)` makes the case's own files in env.work; `outputs`: the relative
    paths (to env.work) the run must create, nothing else; `check(env, text)` → a problem (str) or None,
    for results that could be silently wrong."""

    id: str
    command: str
    named: str
    argv: Callable | None = None
    status: int = 2
    call: Callable | None = None
    raises: type | None = None
    warns: type | None = None
    setup: Callable | None = None
    outputs: frozenset = frozenset()
    check: Callable | None = None


def _files(*names):
    return frozenset(names)


def _model_cases():
    commands = {
        "info": lambda m: ["info", m],
        "predict": lambda m: ["predict", m.parent / "image.png", "--model", m, "--out", "out"],
        "export": lambda m: ["export", m, "--out", "out/m.tflite"],
        "benchmark": lambda m: ["benchmark", m],
        "import-torch": lambda m: ["import-torch", m, "--out", "out/m.keras"],
        "crop": lambda m: ["crop", m.parent / "image.png", "--model", m, "--out", "out"],
        "center": lambda m: ["center", m.parent / "image.png", "--model", m],
        "evaluate": lambda m: ["evaluate", "--model", m, "--dataset", "folder", "--data-dir", m.parent / "ds",
                               "--out", "out"],
    }
    for command, argv in commands.items():
        for name in MODEL_NAMES:
            yield Case(f"{command} model {name}", command, name,
                       argv=lambda env, argv=argv, name=name: argv(env.shared / name),
                       check=None if name == "missing.keras" else _not_called_missing)
    import fastsal_tf

    for name in MODEL_NAMES:
        yield Case(f"api load_model {name}", "api", name,
                   call=lambda env, name=name: fastsal_tf.load_model(env.shared / name),
                   raises=fastsal_tf.ModelNotFoundError if name == "missing.keras" else ValueError,
                   check=None if name == "missing.keras" else _not_called_missing)


def _not_called_missing(env, text):
    """An existing file must not be reported as missing."""
    return "reported as not found although it exists" if "not found" in text.lower() else None


# (command, flags after the command's own arguments, the flag the message must name)
BAD_FLAGS = [
    ("predict", ["--blur", "inf"], "--blur"),
    ("predict", ["--blur", "nan"], "--blur"),
    ("predict", ["--blur", "-1"], "--blur"),
    ("predict", ["--blur", "1e12"], "--blur"),
    ("predict", ["--blur", "wide"], "--blur"),
    ("predict", ["--max-pixels", "-1"], "--max-pixels"),
    ("predict", ["--max-side", "-5"], "--max-side"),
    ("predict", ["--max-side", "1.5"], "--max-side"),
    ("predict", ["--batch-size", "0"], "--batch-size"),
    ("predict", ["--jobs", "0"], "--jobs"),
    ("predict", ["--center-bias", "2"], "--center-bias"),
    ("predict", ["--center-bias", "nan"], "--center-bias"),
    ("predict", ["--colormap", "rainbow"], "--colormap"),
    ("predict", ["--resize", "crop"], "--resize"),
    ("predict", ["--size", "100x100"], "--size"),
    ("predict", ["--size", "big"], "--size"),
    ("crop", ["--aspect", "0:1"], "--aspect"),
    ("crop", ["--aspect", "abc"], "--aspect"),
    ("crop", ["--aspect", "16:0"], "--aspect"),
    ("crop", ["--aspect", "1:1,,16:9"], "--aspect"),
    ("crop", ["--aspect", "inf:1"], "--aspect"),
    ("crop", ["--scale", "0"], "--scale"),
    ("crop", ["--scale", "1.5"], "--scale"),
    ("crop", ["--scale", "nan"], "--scale"),
    ("crop", ["--jobs", "0"], "--jobs"),
    ("center", ["--jobs", "0"], "--jobs"),
    ("center", ["--batch-size", "-2"], "--batch-size"),
    ("evaluate", ["--blur", "inf"], "--blur"),
    ("evaluate", ["--blur", "1e12"], "--blur"),
    ("evaluate", ["--sigma", "inf"], "--sigma"),
    ("evaluate", ["--sigma", "0"], "--sigma"),
    ("evaluate", ["--limit", "0"], "--limit"),
    ("evaluate", ["--protocol", "judd"], "--protocol"),
    ("evaluate", ["--size", "31x32"], "--size"),
    ("benchmark", ["--threads", "0"], "--threads"),
    ("benchmark", ["--runs", "0"], "--runs"),
    ("benchmark", ["--runs", "-3"], "--runs"),
    ("benchmark", ["--warmup", "-1"], "--warmup"),
    ("benchmark", ["--warmup", "some"], "--warmup"),
    ("export", ["--threads", "0"], "--threads"),
    ("export", ["--num-validation", "0"], "--num-validation"),
    ("export", ["--num-representative", "0"], "--num-representative"),
    ("export", ["--num-representative", "many"], "--num-representative"),
    ("export", ["--mode", "int4"], "--mode"),
    ("export", ["--input-dtype", "int16"], "--input-dtype"),
    ("info", ["--size", "100x100"], "--size"),
    ("info", ["--size", "abc"], "--size"),
    ("info", ["--variant", "B"], "--variant"),
    ("import-torch", ["--size", "100x96"], "--size"),
    ("import-torch", ["--variant", "D"], "--variant"),
]
_FLAG_BASE = {
    "predict": lambda env: ["predict", env.shared / "image.png", "--model", env.stub, "--out", "out"],
    "crop": lambda env: ["crop", env.shared / "image.png", "--model", env.stub, "--out", "out"],
    "center": lambda env: ["center", env.shared / "image.png", "--model", env.stub],
    "evaluate": lambda env: ["evaluate", "--model", env.stub, "--dataset", "folder", "--data-dir",
                             env.shared / "ds", "--out", "out"],
    "benchmark": lambda env: ["benchmark", env.stub],
    "export": lambda env: ["export", env.keras, "--out", "out/m.tflite"],
    "info": lambda env: ["info"],
    "import-torch": lambda env: ["import-torch", env.shared / "emptydict.pth", "--out", "out/m.keras"],
}


def _flag_cases():
    for command, flags, flag in BAD_FLAGS:
        yield Case(f"{command} {' '.join(flags)}", command, flag,
                   argv=lambda env, command=command, flags=flags: _FLAG_BASE[command](env) + flags)


# Bad images: (name, how to make it, words of the reason in the message)
BAD_IMAGES = [
    ("empty.png", lambda p: p.write_bytes(b""), "not an image"),
    ("random.jpg", lambda p: p.write_bytes(np.random.default_rng(4).bytes(3000)), "not an image"),
    ("text.png", lambda p: p.write_text("not an image"), "not an image"),
    ("truncated.png", lambda p: p.write_bytes(png_bytes()[:200]), "truncated"),
    ("header.jpg", lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(40)), "corrupt"),
    ("fifo.png", lambda p: os.mkfifo(p), "not a regular file"),
    ("loop.png", lambda p: p.symlink_to(p.name), "looping symbolic link"),
    ("dangling.png", lambda p: p.symlink_to("nowhere.png"), "broken or looping symbolic link"),
    ("missing.png", None, "no such file"),
    ("huge.png", _huge_png, "too large"),
    ("nan.tiff", _float_tiff(np.nan), "NaN or infinite"),
    ("inf.tiff", _float_tiff(np.inf), "NaN or infinite"),
]


def _image_cases():
    """Each bad image beside a good one, through predict, crop --out and center: status 1, the bad one
    named with its reason, the good one's outputs complete, none for the bad one."""
    outputs = {
        "predict": _files("out/good_saliency.png", "out/good_overlay.jpg"),
        "crop": _files("out/good_crop_1x1.png", "out/good_crop_16x9.png"),
        "center": frozenset(),
    }
    extra = {"predict": ["--out", "out"], "crop": ["--out", "out", "--aspect", "1:1,16:9"], "center": []}
    for command in ("predict", "crop", "center"):
        for name, make, reason in BAD_IMAGES:
            def setup(env, name=name, make=make):
                env.inputs.mkdir()
                Image.fromarray(noise(*HW)).save(env.inputs / "good.png")
                if make is not None:
                    make(env.inputs / name)

            def check(env, text, name=name, reason=reason):
                said = text.split(f"{name} (")[-1].split(")")[0] if f"{name} (" in text else ""
                return None if reason in said else f"the reason {reason!r} is not given for {name}"

            yield Case(f"{command} image {name}", command, name, status=1, setup=setup, check=check,
                       outputs=outputs[command],
                       argv=lambda env, command=command, name=name: [
                           command, env.inputs / "good.png", env.inputs / name, "--model", env.stub,
                           *extra[command]])
    for command, name in (("predict", "x_saliency.png"), ("crop", "x_crop_1x1.png")):
        # a pipe named like an output, matched by a glob: reported, never opened to look for a mark
        yield Case(f"{command} glob matching a pipe named like an output", command, name, status=1,
                   setup=lambda env, name=name: os.mkfifo(env.work / name),
                   argv=lambda env, command=command: [command, "*.png", "--model", env.stub, "--out", "out"])
    yield Case("crop image too small for a ratio", "crop", "thin.png", status=1, outputs=_files(),
               setup=lambda env: Image.fromarray(noise(1, 40)).save(env.work / "thin.png"),
               argv=lambda env: ["crop", "thin.png", "--aspect", "1:9", "--model", env.stub, "--out", "out"])
    for command in ("predict", "crop", "center"):
        yield Case(f"{command} folder without images", command, "no images", status=1,
                   setup=lambda env: (env.work / "empty").mkdir(),
                   argv=lambda env, command=command: [command, "empty", "--model", env.stub, "--out", "out"]
                   if command != "center" else [command, "empty", "--model", env.stub])
        yield Case(f"{command} glob matching nothing", command, "nothing*.png", status=1,
                   argv=lambda env, command=command: [command, "nothing*.png", "--model", env.stub])


def _warning_cases():
    """Inputs that run (status 0) with a warning naming the file."""
    for command, out in (("predict", ("out/anim_saliency.png", "out/anim_overlay.jpg")), ("crop", ()),
                         ("center", ())):
        for name in ("anim.gif", "anim.tiff"):
            def check(env, text, name=name):
                return None if f"{name}: 3 frames: the first is used" in text else "no first-frame warning"

            yield Case(f"{command} multi-frame {name}", command, name, status=0, check=check,
                       outputs=_files(*out),
                       setup=lambda env, name=name: _multi_frame(env.work / name),
                       argv=lambda env, command=command, name=name: [command, name, "--model", env.stub] + (
                           ["--out", "out"] if command == "predict" else []))
    yield Case("predict tflite without metadata", "predict", "no FastSal metadata", status=0,
               outputs=_files("out/image_saliency.png", "out/image_overlay.jpg"),
               argv=lambda env: ["predict", env.shared / "image.png", "--model", env.stub, "--out", "out"])


def _output_cases():
    """Outputs that would replace inputs, reruns into the input folder, --out in the way."""

    def crop_twice(env):
        env.inputs.mkdir()
        Image.fromarray(noise(*HW)).save(env.inputs / "a.jpg", quality=90)
        Image.fromarray(noise(*HW, seed=2)).save(env.inputs / "b.png")
        from fastsal_tf.cli import main

        with _quiet():
            assert main(["crop", "in", "--model", str(env.stub), "--out", "in", "--aspect", "1:1,9:16"]) == 0

    def two_images(env, text):
        lines = [line for line in text.splitlines() if line.startswith("in/")]
        return None if len(lines) == 2 else f"the rerun took {len(lines)} images (its own crops are inputs)"

    yield Case("crop rerun into the input folder", "crop", "in", status=0, setup=crop_twice, check=two_images,
               argv=lambda env: ["crop", "in", "--model", env.stub, "--out", "in", "--aspect", "1:1,9:16"])

    def predict_twice(env):
        env.inputs.mkdir()
        Image.fromarray(noise(*HW)).save(env.inputs / "a.png")
        Image.fromarray(noise(20, 30)).save(env.inputs / "b_saliency.png")  # a user's image, no output
        from fastsal_tf.cli import main

        with _quiet():
            assert main(["predict", "in", "--model", str(env.stub), "--out", "in"]) == 0

    yield Case("predict rerun into the input folder", "predict", "2 images", status=0, setup=predict_twice,
               argv=lambda env: ["predict", "in", "--model", env.stub, "--out", "in"])

    def user_crop_name(env):
        Image.fromarray(noise(*HW)).save(env.work / "a.png")
        Image.fromarray(noise(*HW, seed=3)).save(env.work / "a_crop_1x1.png")  # the user's, unmarked

    yield Case("crop output would replace an input", "crop", "a_crop_1x1.png", setup=user_crop_name,
               argv=lambda env: ["crop", ".", "--aspect", "1:1", "--model", env.stub, "--out", "."])

    def user_saliency_name(env):
        Image.fromarray(noise(*HW)).save(env.work / "a.png")
        Image.fromarray(noise(*HW, seed=3)).save(env.work / "a_saliency.png")  # the user's, unmarked

    yield Case("predict output would replace an input", "predict", "a_saliency.png", setup=user_saliency_name,
               argv=lambda env: ["predict", ".", "--model", env.stub, "--out", "."])

    def out_file(env):
        (env.work / "taken").write_text("a file")

    for command in ("predict", "crop"):
        yield Case(f"{command} --out is a file", command, "--out", setup=out_file,
                   argv=lambda env, command=command: [command, env.shared / "image.png", "--model", env.stub,
                                                      "--out", "taken"])

    below_a_file = {
        "predict": lambda env: ["predict", env.shared / "image.png", "--model", env.stub, "--out", "taken/sub"],
        "crop": lambda env: ["crop", env.shared / "image.png", "--model", env.stub, "--out", "taken/sub"],
        "evaluate": lambda env: ["evaluate", "--model", env.stub, "--dataset", "folder", "--data-dir",
                                 env.shared / "ds", "--out", "taken/sub"],
        "export": lambda env: ["export", env.keras, "--out", "taken/m.tflite"],
        "import-torch": lambda env: ["import-torch", env.shared / "emptydict.pth", "--out", "taken/m.keras"],
    }
    for command, argv in below_a_file.items():
        yield Case(f"{command} --out below a file", command, "taken is a file", setup=out_file, argv=argv)
    yield Case("evaluate --out is a file", "evaluate", "--out", setup=out_file,
               argv=lambda env: ["evaluate", "--model", env.stub, "--dataset", "folder", "--data-dir",
                                 env.shared / "ds", "--out", "taken"])

    def out_crop_folder(env):
        Image.fromarray(noise(*HW)).save(env.work / "a.png")
        (env.work / "out" / "a_crop_16x9.png").mkdir(parents=True)  # a folder in the way of one crop

    yield Case("crop set with one crop blocked", "crop", "a_crop_16x9.png", status=1, setup=out_crop_folder,
               outputs=_files(),
               argv=lambda env: ["crop", "a.png", "--aspect", "1:1,16:9", "--model", env.stub, "--out", "out"])

    def folder_target(env):
        (env.work / "m.keras").mkdir()

    yield Case("import-torch --out onto a folder", "import-torch", "m.keras", setup=folder_target,
               argv=lambda env: ["import-torch", env.shared / "emptydict.pth", "--out", "m.keras"])
    yield Case("export --out onto a folder", "export", "m.tflite", setup=lambda env: (env.work / "m.tflite").mkdir(),
               argv=lambda env: ["export", env.keras, "--out", "m.tflite"])
    def image_folder(bad_name, make):
        def setup(env):
            (env.work / "images").mkdir()
            Image.fromarray(noise(*HW)).save(env.work / "images" / "a.png")
            if make is not None:
                make(env.work / "images" / bad_name)
        return setup

    for title, bad_name, make, named in (
            ("truncated", "b.png", lambda p: p.write_bytes(png_bytes()[:300]), "b.png"),
            ("decompression bomb", "huge.png", _huge_png, "huge.png"),
            ("random bytes", "c.jpg", lambda p: p.write_bytes(np.random.default_rng(8).bytes(500)), "c.jpg")):
        for flag in ("--representative", "--validation"):
            yield Case(f"export {flag} image {title}", "export", named, setup=image_folder(bad_name, make),
                       argv=lambda env, flag=flag: ["export", env.keras, "--size", "x".join(map(str, HW)),
                                                    flag, "images", "--out", "out/m.tflite"])
    yield Case("export --representative without images", "export", "empty",
               setup=lambda env: (env.work / "empty").mkdir(),
               argv=lambda env: ["export", env.keras, "--representative", "empty", "--out", "out/m.tflite"])
    yield Case("export --validation missing", "export", "nothere",
               argv=lambda env: ["export", env.keras, "--validation", "nothere", "--out", "out/m.tflite"])
    yield Case("export int8 without --representative", "export", "--representative",
               argv=lambda env: ["export", env.keras, "--mode", "int8", "--out", "out/m.tflite"])
    yield Case("info a folder", "info", "plainfolder", argv=lambda env: ["info", env.shared / "plainfolder"])
    yield Case("benchmark an image", "benchmark", "image.png", argv=lambda env: ["benchmark", env.shared / "image.png"])
    yield Case("export a .tflite", "export", "stub.tflite", argv=lambda env: ["export", env.stub, "--out",
                                                                             "out/m.tflite"])


def _planted_code_cases():
    """Checkpoints whose pickle carries code: refused by name, and the code never runs (no ./planted)."""
    import fastsal_tf

    for zipped in (False, True):
        name = "planted_zip.pth" if zipped else "planted.pth"
        setup = (lambda env, zipped=zipped, name=name: _planted_pth(zipped)(env.work / name))
        commands = {"import-torch": ["import-torch", name, "--out", "out/m.keras"], "info": ["info", name],
                    "predict": ["predict", "image.png", "--model", name, "--out", "out"],
                    "export": ["export", name, "--out", "out/m.tflite"]}
        for command, argv in commands.items():
            def full_setup(env, setup=setup):
                setup(env)
                Image.fromarray(noise(*HW)).save(env.work / "image.png")
            yield Case(f"{command} checkpoint with code {name}", command, name, setup=full_setup,
                       argv=lambda env, argv=argv: argv, check=_code_ran)
        yield Case(f"api load_model checkpoint with code {name}", "api", name, setup=setup, raises=ValueError,
                   call=lambda env, name=name: fastsal_tf.load_model(env.work / name), check=_code_ran)


def _code_ran(env, text):
    return "the checkpoint's code ran (./planted exists)" if (env.work / "planted").exists() else None


def _path_cases():
    """Empty names, folders below the working folder, names with odd characters."""
    import fastsal_tf

    for command in ("predict", "crop", "center"):
        yield Case(f"{command} empty path", command, "an empty path", status=1,
                   argv=lambda env, command=command: [command, "", "--model", env.stub])
    for command, argv in (("info", lambda env: ["info", ""]), ("benchmark", lambda env: ["benchmark", " "]),
                          ("predict", lambda env: ["predict", env.shared / "image.png", "--model", "", "--out", "out"]),
                          ("export", lambda env: ["export", "", "--out", "out/m.tflite"])):
        yield Case(f"{command} empty model name", command, "empty model name", argv=argv)
    yield Case("api load_model empty name", "api", "empty model name", raises=ValueError,
               call=lambda env: fastsal_tf.load_model(""))

    def two_images(env):
        (env.work / "photos").mkdir()
        for index in range(2):
            Image.fromarray(noise(*HW, seed=index)).save(env.work / "photos" / f"{index}.png")

    def results(count):
        def check(env, text):
            found = text.count("photos/")
            return None if found == count else f"{found} results for the {count} images of the folder"
        return check

    # Commands without --out read every folder (none is their output folder).
    yield Case("center folder below the working folder", "center", "photos", status=0, setup=two_images,
               check=results(2), argv=lambda env: ["center", "photos", "--model", env.stub])
    yield Case("crop folder below the working folder", "crop", "photos", status=0, setup=two_images,
               check=results(2), argv=lambda env: ["crop", "photos", "--model", env.stub])

    odd = {"non-UTF-8 name": os.fsdecode(b"b\xff.png"), "name with a newline": "c\nd.png",
           "name with spaces and quotes": "it's a photo.png"}
    for title, name in odd.items():
        stem = name[:-4]
        for command, outputs in (("predict", (f"out/{stem}_saliency.png", f"out/{stem}_overlay.jpg")),
                                 ("crop", (f"out/{stem}_crop_1x1.png",)), ("center", ())):
            said = "1 images in" if command == "predict" else name.split("\n")[0]  # predict names no good image
            yield Case(f"{command} {title}", command, said, status=0, outputs=_files(*outputs),
                       setup=lambda env, name=name: Image.fromarray(noise(*HW)).save(env.work / name),
                       argv=lambda env, command=command, name=name: [command, name, "--model", env.stub] + (
                           ["--out", "out"] if command != "center" else []) + (
                           ["--aspect", "1:1"] if command == "crop" else []))


def _evaluate_cases():
    def maps_from_predict(env):
        env.inputs.mkdir()
        Image.fromarray(noise(*HW)).save(env.inputs / "x.png")
        from fastsal_tf.cli import main

        with _quiet():
            assert main(["predict", "in/x.png", "--model", str(env.stub), "--out", "maps", "--no-overlay"]) == 0

    yield Case("evaluate authors protocol on predict PNGs", "evaluate", "x_saliency.png", setup=maps_from_predict,
               argv=lambda env: ["evaluate", "--model", "maps", "--protocol", "authors", "--dataset", "folder",
                                 "--data-dir", env.shared / "ds", "--out", "out"])
    yield Case("evaluate missing data folder", "evaluate", "nothere",
               argv=lambda env: ["evaluate", "--model", env.stub, "--dataset", "folder", "--data-dir", "nothere",
                                 "--out", "out"])
    yield Case("evaluate unknown dataset", "evaluate", "nosuch",
               argv=lambda env: ["evaluate", "--model", env.stub, "--dataset", "nosuch", "--data-dir",
                                 env.shared / "ds", "--out", "out"])
    yield Case("evaluate folder dataset with a split", "evaluate", "train",
               argv=lambda env: ["evaluate", "--model", env.stub, "--dataset", "folder", "--split", "train",
                                 "--data-dir", env.shared / "ds", "--out", "out"])

    def dataset(label_name, write_label):
        """A folder dataset in env.work/data: images/x.png and one label file written by write_label(path)."""
        def setup(env):
            (env.work / "data" / "images").mkdir(parents=True)
            Image.fromarray(noise(*HW)).save(env.work / "data" / "images" / "x.png")
            if label_name:
                label = env.work / "data" / label_name
                label.parent.mkdir()
                write_label(label)
        return setup

    bad_data = [
        ("fixations outside the image", "fixations/x.csv", lambda p: p.write_text("x,y\n10,10\n500,20\n"), "x.csv"),
        ("NaN fixation", "fixations/x.json", lambda p: p.write_text('{"fixations": [[1, NaN]]}'), "x.json"),
        ("fixation file without x, y", "fixations/x.csv", lambda p: p.write_text("a,b\n1,2\n"), "x.csv"),
        ("empty fixation file", "fixations/x.csv", lambda p: p.write_text(""), "x.csv"),
        ("map of another size", "maps/x.png", lambda p: Image.fromarray(np.zeros((10, 10), np.uint8)).save(p),
         "x.png"),
        ("corrupt map", "maps/x.png", lambda p: p.write_bytes(png_bytes()[:100]), "x.png"),
        ("pipe as a map", "maps/x.png", os.mkfifo, "not a regular file"),
        ("looping link as a fixation file", "fixations/x.csv", lambda p: p.symlink_to(p.name), "looping"),
        ("image without a label", None, None, "x"),
    ]
    for title, label_name, write_label, named in bad_data:
        yield Case(f"evaluate {title}", "evaluate", named, setup=dataset(label_name, write_label),
                   argv=lambda env: ["evaluate", "--model", env.stub, "--dataset", "folder", "--data-dir", "data",
                                     "--out", "out"])

    def nan_map(env):
        (env.work / "maps").mkdir()
        values = np.ones(HW)
        values[0, 0] = np.nan
        np.save(env.work / "maps" / "x.npy", values)

    yield Case("evaluate a NaN map", "evaluate", "x.npy", setup=nan_map,
               argv=lambda env: ["evaluate", "--model", "maps", "--dataset", "folder", "--data-dir",
                                 env.shared / "ds", "--out", "out"])


def _api_cases():
    import fastsal_tf
    from fastsal_tf import ImageError, SaliencyWarning

    def nan_array(value):
        def call(env):
            array = np.random.default_rng(0).random((*HW, 3))
            array[1, 2, 0] = value
            return env.predictor().predict_map(array)
        return call

    yield Case("api predict_map NaN array", "api", "NaN", call=nan_array(np.nan), raises=ImageError)
    yield Case("api predict_map inf array", "api", "NaN or infinite", call=nan_array(-np.inf), raises=ImageError)
    yield Case("api predict_map NaN TIFF", "api", "nan.tiff", raises=ImageError,
               setup=lambda env: _float_tiff(np.nan)(env.work / "nan.tiff"),
               call=lambda env: env.predictor().predict_map(env.work / "nan.tiff"))
    yield Case("api predict_map truncated PIL image", "api", "t.png", raises=ImageError,
               setup=lambda env: (env.work / "t.png").write_bytes(png_bytes()[:300]),
               call=lambda env: env.predictor().predict_map(Image.open(env.work / "t.png")))
    yield Case("api predict_map missing file", "api", "missing.png", raises=ImageError,
               call=lambda env: env.predictor().predict_map(env.work / "missing.png"))
    yield Case("api predict_map a folder", "api", "afolder", raises=ImageError,
               setup=lambda env: (env.work / "afolder").mkdir(),
               call=lambda env: env.predictor().predict_map(env.work / "afolder"))
    yield Case("api predict_map a fifo", "api", "f.png", raises=ImageError,
               setup=lambda env: os.mkfifo(env.work / "f.png"),
               call=lambda env: env.predictor().predict_map(env.work / "f.png"))
    yield Case("api predict_map 4-D array", "api", "shape", raises=ValueError,
               call=lambda env: env.predictor().predict_map(np.zeros((1, *HW, 3), np.uint8)))
    yield Case("api predict_map complex array", "api", "dtype", raises=ValueError,
               call=lambda env: env.predictor().predict_map(np.zeros((*HW, 3), np.complex64)))
    yield Case("api predict_crops bad aspect", "api", "0:1", raises=ValueError,
               call=lambda env: env.predictor().predict_crops(noise(*HW), ["0:1"]))
    yield Case("api predict_crops scale 0", "api", "scale", raises=ValueError,
               call=lambda env: env.predictor().predict_crops(noise(*HW), ["1:1"], scale=0))
    yield Case("api predict_overlay alpha 5", "api", "alpha", raises=ValueError,
               call=lambda env: env.predictor().predict_overlay(noise(*HW), alpha=5))
    yield Case("api predict_overlay colormap", "api", "rainbow", raises=ValueError,
               call=lambda env: env.predictor().predict_overlay(noise(*HW), colormap="rainbow"))
    yield Case("api predict_maps one missing file", "api", "missing.png", raises=ImageError,
               setup=lambda env: Image.fromarray(noise(*HW)).save(env.work / "good.png"),
               call=lambda env: env.predictor().predict_maps([env.work / "good.png", env.work / "missing.png"]))
    yield Case("api load_model bad resize", "api", "zoom", raises=ValueError,
               call=lambda env: fastsal_tf.load_model(env.keras, resize="zoom"))

    def crops_from_text(env, text):
        boxes = env.predictor().predict_crops(noise(*HW), "1:1,16:9")
        return None if len(boxes) == 2 else f"'1:1,16:9' gave {len(boxes)} boxes"

    yield Case("api predict_crops aspects as one string", "api", "", check=crops_from_text, call=lambda env: None)
    yield Case("api predict_overlay multi-frame GIF", "api", "anim.gif", warns=SaliencyWarning,
               setup=lambda env: _multi_frame(env.work / "anim.gif"),
               call=lambda env: env.predictor().predict_overlay(env.work / "anim.gif"))

    def predictor_option(**options):
        def call(env):
            from fastsal_tf.predict.predictor import SaliencyPredictor

            return SaliencyPredictor(env.predictor().backend, **options)
        return call

    for option, value in (("max_side", -1), ("max_side", 2.5), ("max_side", "big"), ("max_pixels", -1),
                          ("blur", float("inf")), ("blur", 1e12), ("blur", "wide"), ("center_bias", 2.0)):
        yield Case(f"api SaliencyPredictor {option}={value}", "api", option.split("_")[0], raises=ValueError,
                   call=predictor_option(**{option: value}))

    def scale_check(env, text):
        predictor = env.predictor()
        image = noise(*HW, seed=7)
        expected = predictor.predict_map(image)
        for variant in (image / 255.0, image.astype(np.float32)):
            if not np.allclose(predictor.predict_map(variant), expected, rtol=1e-6, atol=1e-12):
                return "a float array gives another map than the same uint8 image"
        dark = predictor.predict_map(np.full((*HW, 3), 1.5, np.float32))  # above 1: a 0-255 image
        if not np.allclose(dark, predictor.predict_map(np.full((*HW, 3), 2, np.uint8)), rtol=1e-6, atol=1e-12):
            return "a float array with values above 1 is not read as 0-255"
        return None

    yield Case("api predict_map float arrays on both scales", "api", "", check=scale_check,
               call=lambda env: None)


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def all_cases() -> list[Case]:
    """The case table, in a fixed order; ids are unique."""
    cases = [*_model_cases(), *_flag_cases(), *_image_cases(), *_warning_cases(), *_output_cases(),
             *_planted_code_cases(), *_path_cases(), *_evaluate_cases(), *_api_cases()]
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


# ------------------------------------------------------------------------------------------- running

def snapshot(folder: pathlib.Path) -> dict[str, str]:
    """{relative path: sha256} of the regular files below folder, "other" for links, folders and the
    rest."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as stream:
                    found[rel] = hashlib.sha256(stream.read()).hexdigest()
            else:
                found[rel] = "other"
    return found


@dataclasses.dataclass
class Outcome:
    """What one case did, and the rules it broke (`problems`, empty when it passed)."""

    id: str
    command: str
    result: str  # "exit 2", "exit 1", "exit 0", "raised ImageError", "warned", "returned"
    traceback: bool
    named: bool
    partial: list[str]
    inputs_changed: list[str]
    wrong: list[str]
    message: str  # the first line that says what is wrong (or the last line printed)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.traceback:
            found.append("traceback")
        if not self.named:
            found.append("message does not name the file or flag")
        if self.partial:
            found.append("partial or stray output: " + ", ".join(self.partial))
        if self.inputs_changed:
            found.append("input changed: " + ", ".join(self.inputs_changed))
        found += [f"wrong: {text}" for text in self.wrong]
        return found


def _key_line(text: str) -> str:
    """The line that says what went wrong: an error, else a skipped image, else a warning, else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for word in ("error", "skipped", "warning"):
        for line in lines:
            if word in line:
                return line
    return lines[-1] if lines else ""


CASE_SECONDS = 120  # a case still running after this (e.g. blocked reading a pipe) fails as "timed out"


class CaseTimeout(BaseException):
    """Raised in the main thread by SIGALRM when a case runs past CASE_SECONDS (a BaseException, so that no
    `except Exception` of the code under test takes it for an ordinary error)."""


def _time_out(signum, frame):
    raise CaseTimeout(f"still running after {CASE_SECONDS} s")


def run_case(case: Case, env: Env) -> Outcome:
    """Runs one case in env (env.work must exist and be empty; it is the cwd while the case's setup and run
    go) and checks it (see the module docstring)."""
    cwd = os.getcwd()
    os.chdir(env.work)
    try:
        return _run_in_work(case, env)
    finally:
        os.chdir(cwd)


def _run_in_work(case: Case, env: Env) -> Outcome:
    if case.setup is not None:
        try:
            case.setup(env)
        except Exception as error:  # noqa: BLE001 — e.g. a first run that should have worked
            return Outcome(case.id, case.command, "setup failed", False, True, [], [],
                           [f"the setup raised {type(error).__name__}: {error}"], "")
    before_shared = snapshot(env.shared)
    before_work = snapshot(env.work)
    stdout, stderr = io.StringIO(), io.StringIO()
    escaped = None
    result = ""
    caught = []
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
            warnings.catch_warnings(record=case.call is not None) as recorded:
        warnings.simplefilter("always")
        previous = signal.signal(signal.SIGALRM, _time_out)
        signal.alarm(CASE_SECONDS)
        try:
            if case.argv is not None:
                from fastsal_tf.cli import main

                try:
                    result = f"exit {main([str(a) for a in case.argv(env)])}"
                except SystemExit as exit_:  # argparse refusing a value
                    result = f"exit {exit_.code}"
            else:
                case.call(env)
                result = "returned"
        except CaseTimeout:
            result = "timed out"
        except Exception as error:  # noqa: BLE001 — recorded as the outcome
            if case.raises is not None and isinstance(error, case.raises):
                result = f"raised {type(error).__name__}"
                caught.append(str(error))
            else:
                escaped = error
                result = f"escaped {type(error).__name__}"
                stderr.write("".join(traceback.format_exception(error)))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        if recorded:
            caught += [str(w.message) for w in recorded if case.warns and issubclass(w.category, case.warns)]
            if case.warns is not None and caught:
                result = "warned"
    text = stdout.getvalue() + stderr.getvalue() + "\n".join(caught)
    wrong = []
    if case.argv is not None and result != f"exit {case.status}":
        wrong.append(f"{result}, expected exit {case.status}" + (" (a bad input accepted)" if result == "exit 0"
                                                                  else ""))
    if case.call is not None:
        expected = ("raised " + case.raises.__name__ if case.raises else "warned" if case.warns else "returned")
        if not result.startswith(expected.split()[0]) or (case.warns and result != "warned"):
            wrong.append(f"{result}, expected {expected}")
    after_work = snapshot(env.work)
    partial, changed = [], []
    for rel, digest in before_work.items():
        if after_work.get(rel) != digest:
            changed.append(rel)
    for rel in sorted(set(after_work) - set(before_work)):
        if after_work[rel] == "other" and any(other.startswith(rel + os.sep) for other in case.outputs):
            continue  # a folder holding expected outputs
        if rel == "out" and after_work[rel] == "other" and not any(r.startswith("out" + os.sep) for r in after_work):
            continue  # an empty output folder
        if rel not in case.outputs or os.path.basename(rel).startswith("."):
            partial.append(rel)
    missing = sorted(set(case.outputs) - set(after_work))
    if missing:
        wrong.append("missing outputs: " + ", ".join(missing))
    after_shared = snapshot(env.shared)
    changed += [f"shared/{rel}" for rel, digest in before_shared.items() if after_shared.get(rel) != digest]
    if case.check is not None:
        try:
            problem = case.check(env, text)
        except Exception as error:  # noqa: BLE001 — the check's own call failed: a wrong result
            problem = f"the check raised {type(error).__name__}: {error}"
        if problem:
            wrong.append(problem)
    return Outcome(case.id, case.command, result, escaped is not None or "Traceback" in text,
                   case.named in text, partial, changed, wrong, _key_line(text))
