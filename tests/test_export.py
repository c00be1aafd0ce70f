"""LiteRT export: tiny FastSal-A / C models (64×64, random weights) in every mode, parity bounds, the
float tail of int8 models, metadata, builtin-ops-only, bad input (nothing written), CLI and convert.py."""

import json
import pathlib
import keras
import numpy as np
import pytest

from fastsal_tf.export import (PARITY_BOUNDS, ExportError, ParityError, UnsupportedOpsError, export_tflite,
                               list_ops, read_metadata, run_tflite)
from fastsal_tf.export.images import synthetic_images
from fastsal_tf.export.graph import logits_model
from fastsal_tf.export.parity import make_interpreter, reference_outputs
from fastsal_tf.metrics import pearson
from fastsal_tf.models import TF_NATIVE, build_fastsal

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE = (64, 64)
# Every op a FastSal export may contain (all LiteRT builtins).
EXPECTED_OPS = {"ADD", "CAST", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
                "GATHER", "LOGISTIC", "MUL", "QUANTIZE", "RESHAPE", "RESIZE_BILINEAR", "ROUND", "SOFTMAX"}


@pytest.fixture(scope="module")
def images():
    """12 synthetic 64×64 images: 8 for calibration, 4 held out for checks."""
    return synthetic_images(12, SIZE, seed=3)


@pytest.fixture(scope="module")
def tiny_model():
    """A two-conv Keras model whose single output serves as logits (fast to convert)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((*SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", name="logits")(x), name="tiny")


@pytest.fixture(scope="module")
def models(images, random_fastsal):
    return random_fastsal(TF_NATIVE, images[:8], SIZE)


def dir_listing(path):
    return sorted(p.name for p in pathlib.Path(path).iterdir())


@pytest.mark.parametrize("variant", ["A", "C"])
@pytest.mark.parametrize("mode", ["fp32", "fp16", "dynamic", "int8"])
def test_every_mode_converts_with_parity(models, images, tmp_path, variant, mode):
    out = tmp_path / f"{variant}_{mode}.tflite"
    result = export_tflite(models[variant], out, mode=mode, input_size=SIZE, outputs=("map", "prob"),
                           representative_images=images[:8], validation_images=images[8:],
                           metadata={"training_data": "none (random weights)"})
    assert dir_listing(tmp_path) == [f"{variant}_{mode}.parity.json", out.name]  # no temp files left
    assert result.size_bytes == out.stat().st_size

    # Parity: the library's own report, and the bounds of the issue checked here explicitly.
    report = json.loads(result.parity_path.read_text())
    assert report["passed"] and report["enforced"] and report["num_images"] == 4 and report["mode"] == mode
    saliency, prob = report["outputs"]["saliency_map"], report["outputs"]["probability_map"]
    if mode == "fp32":
        assert saliency["max_abs_max"] <= 1e-4
    elif mode == "fp16":
        assert min(saliency["cc_min"], prob["cc_min"]) >= 0.999
    else:
        for entry in (saliency, prob):
            assert entry["cc_mean"] >= 0.99 and entry["cc_min"] >= 0.98

    # Only builtin ops, fixed batch-1 signature with the documented names.
    ops = list_ops(out)
    assert set(ops) <= EXPECTED_OPS, ops
    assert not any(op.startswith("Flex") for op in ops)
    interpreter = make_interpreter(out)
    (image,) = interpreter.get_input_details()
    assert image["name"] == "image" and image["dtype"] == np.uint8
    assert list(image["shape"]) == [1, *SIZE, 3] and list(image["shape_signature"]) == [1, *SIZE, 3]
    assert [d["name"] for d in interpreter.get_output_details()] == ["saliency_map", "probability_map"]
    signature = interpreter.get_signature_list()["serving_default"]
    assert signature == {"inputs": ["image"], "outputs": ["probability_map", "saliency_map"]}  # sorted by LiteRT

    # The probability map (float tail, also in int8) sums to 1 and matches the Keras softmax.
    got = run_tflite(out, images[8:])
    want = reference_outputs(logits_model(models[variant], SIZE), images[8:])
    assert got["probability_map"].dtype == np.float32
    np.testing.assert_allclose(got["probability_map"].sum(axis=(1, 2, 3)), 1.0, atol=1e-4)
    assert min(pearson(g, w) for g, w in zip(got["probability_map"], want["probability_map"])) >= 0.98
    assert 0.0 <= got["saliency_map"].min() and got["saliency_map"].max() <= 1.0

    metadata = read_metadata(out)
    assert metadata["export_mode"] == mode and metadata["variant"] == variant
    assert metadata["input_size"] == list(SIZE) and metadata["input"]["colour_order"] == "RGB"
    assert metadata["training_data"] == "none (random weights)"
    assert set(metadata["outputs"]) == {"saliency_map", "probability_map"}
    for key in ("name", "version", "license", "input", "outputs"):
        assert metadata[key]

    if mode == "int8":
        check_int8_graph(out)


def check_int8_graph(path):
    """Int8 body, float sigmoid / softmax tail, input quantised losslessly (scale 1)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(pathlib.Path(path).read_bytes()))
    graph = model.subgraphs[0]
    kinds = {}
    for op in graph.operators:
        code = flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
        kinds.setdefault(code, []).append(op)
    conv_inputs = [graph.tensors[op.inputs[0]].type for op in kinds[schema.BuiltinOperator.CONV_2D]]
    assert set(conv_inputs) == {schema.TensorType.INT8}
    for code in (schema.BuiltinOperator.SOFTMAX, schema.BuiltinOperator.LOGISTIC):
        assert [graph.tensors[op.inputs[0]].type for op in kinds[code]] == [schema.TensorType.FLOAT32]
    (quantize,) = kinds[schema.BuiltinOperator.QUANTIZE]
    quantization = graph.tensors[quantize.outputs[0]].quantization
    assert list(quantization.scale) == [1.0] and list(quantization.zeroPoint) == [-128]


def test_float_input_uint8_map_logits_and_rebuild_at_export_size(models, images, tmp_path):
    """Float input, uint8 map and logits outputs; a FastSal model built for another input size is rebuilt
    at the export size with its weights (reference: the 64×64 model)."""
    other_size = build_fastsal("C", (96, 64, 3), **TF_NATIVE)
    other_size.set_weights(models["C"].get_weights())
    out = tmp_path / "c.tflite"
    result = export_tflite(other_size, out, mode="fp32", input_size=SIZE, input_dtype="float32",
                           outputs="logits,map", map_dtype="uint8", validation_images=images[8:])
    interpreter = make_interpreter(out)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    details = {d["name"]: d for d in interpreter.get_output_details()}
    assert list(details) == ["saliency_map", "logits"]
    assert details["saliency_map"]["dtype"] == np.uint8
    assert details["saliency_map"]["quantization"] == pytest.approx((1 / 255, 0))
    got = run_tflite(out, [image.astype(np.float32) for image in images[8:]])
    want = reference_outputs(logits_model(models["C"], SIZE), images[8:])
    assert np.abs(got["saliency_map"] / 255.0 - want["saliency_map"]).max() <= 0.5 / 255 + 1e-4
    assert np.abs(got["logits"] - want["logits"]).max() <= 1e-3
    assert result.metadata["outputs"]["saliency_map"]["dtype"] == "uint8"
    assert result.metadata["input"]["dtype"] == "float32"


def _offset_model():
    """A model whose int8 weight rounding shifts the logits by a known constant: 63 ReLU6 channels sit at 6
    everywhere and are read through weights (n + 0.45)·scale, each rounded down by 0.45·scale (scale =
    0.01, set by the largest weight 1.27), i.e. −63·6·0.0045 ≈ −1.7 on every logit. A ReLU ("side") is the
    first operand of the final ADD, which TensorFlow's calibrator records with the ADD's own range."""
    inputs = keras.Input((*SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    features = keras.layers.Conv2D(64, 1, activation="relu6", name="features")
    head = keras.layers.Conv2D(1, 1, name="head")
    side = keras.layers.Conv2D(1, 1, activation="relu", name="side")
    logits = keras.layers.Add(name="logits")([side(x), head(features(x))])
    model = keras.Model(inputs, logits, name="offset")
    kernel = np.zeros((1, 1, 3, 64), np.float32)
    kernel[0, 0, 0, 0] = 5.0  # channel 0 varies with red, 0–5; channels 1..63 are 6 (bias 10, ReLU6)
    features.set_weights([kernel, np.r_[0.0, np.full(63, 10.0)].astype(np.float32)])
    weights = np.r_[1.27, 0.01 * (np.random.default_rng(0).integers(-20, 21, 63) + 0.45)].astype(np.float32)
    head.set_weights([weights.reshape(1, 1, 64, 1), np.array([-2.5 * 1.27 - 6.0 * weights[1:].sum()], np.float32)])
    side.set_weights([np.array([0.0, 1.0, 0.0], np.float32).reshape(1, 1, 3, 1), np.zeros(1, np.float32)])
    return model


def test_int8_calibration_ranges_and_bias_correction(images, tmp_path, monkeypatch):
    """Own activation ranges (a ReLU feeding an ADD keeps its [0, max] range) and bias correction of the
    int8 convolutions (the constant offset of the weight rounding is gone from the logits)."""
    from ai_edge_litert.tools import flatbuffer_utils

    from fastsal_tf.export import calibration

    model = _offset_model()
    want = reference_outputs(logits_model(model, SIZE), images[8:])["logits"]

    def logit_offset(path):
        saliency = np.clip(run_tflite(path, images[8:])["saliency_map"].astype(np.float64), 1e-6, 1 - 1e-6)
        return float(np.mean(np.log(saliency / (1 - saliency)) - want))

    kwargs = dict(mode="int8", input_size=SIZE, representative_images=images[:8], validation_images=images[8:])
    corrected = export_tflite(model, tmp_path / "corrected.tflite", **kwargs)
    assert abs(logit_offset(corrected.path)) < 0.1
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(corrected.path.read_bytes())).subgraphs[0]
    (relu,) = [graph.tensors[op.outputs[0]] for op in graph.operators
               if "/side" in graph.tensors[op.outputs[0]].name.decode()]
    # side = green / 255: range [0, ≤ 1], not the ADD's [−3, 4] that TensorFlow's calibrator records
    assert list(relu.quantization.zeroPoint) == [-128] and relu.quantization.scale[0] <= 1 / 255 + 1e-7

    monkeypatch.setattr(calibration, "correct_biases", lambda calibrated, quantized, means: quantized)
    plain = export_tflite(model, tmp_path / "plain.tflite", check_parity=False, **kwargs)
    assert logit_offset(plain.path) < -1.5


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("size", [(60, 64), (64, 0), (100, 96)])
def test_unsupported_size_is_refused(tiny_model, tmp_path, size):
    with pytest.raises(ExportError, match="multiples of 32"):
        export_tflite(tiny_model, tmp_path / "m.tflite", input_size=size)
    assert dir_listing(tmp_path) == []


@pytest.mark.parametrize("representative", [None, [], iter(())])
def test_int8_without_representative_data_is_refused(tiny_model, tmp_path, representative):
    with pytest.raises(ExportError, match="representative"):
        export_tflite(tiny_model, tmp_path / "m.tflite", mode="int8", input_size=SIZE,
                      representative_images=representative)
    assert dir_listing(tmp_path) == []


def test_model_needing_flex_ops_is_refused(tmp_path):
    import tensorflow as tf

    inputs = keras.Input((*SIZE, 3), name="image")
    x = keras.layers.Conv2D(1, 1)(inputs)
    outputs = keras.layers.Lambda(lambda t: tf.math.erfinv(tf.tanh(t) * 0.5), name="erfinv")(x)
    with pytest.raises(UnsupportedOpsError, match="Erfinv"):
        export_tflite(keras.Model(inputs, outputs), tmp_path / "m.tflite", input_size=SIZE)
    assert dir_listing(tmp_path) == []


def test_bad_arguments_are_refused(tiny_model, tmp_path):
    for kwargs, message in [(dict(mode="bf16"), "mode"), (dict(outputs="map,heat"), "outputs"),
                            (dict(input_dtype="int8"), "input_dtype"), (dict(map_dtype="int8"), "map_dtype"),
                            (dict(metadata={"x": object()}), "JSON")]:
        with pytest.raises(ExportError, match=message):
            export_tflite(tiny_model, tmp_path / "m.tflite", input_size=SIZE, **kwargs)
    with pytest.raises(ExportError, match=".tflite"):
        export_tflite(tiny_model, tmp_path / "m.bin", input_size=SIZE)
    assert dir_listing(tmp_path) == []


def test_missed_parity_bound_fails_loudly_and_writes_nothing(tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "m.tflite"
    out.write_bytes(b"previous model")
    monkeypatch.setitem(PARITY_BOUNDS["fp32"], "map_max_abs", 0.0)
    monkeypatch.setitem(PARITY_BOUNDS["fp32"], "mean_cc", 1.5)
    with pytest.raises(ParityError, match="parity") as caught:
        export_tflite(tiny_model, out, input_size=SIZE, outputs="map,prob")
    assert not caught.value.report["passed"]
    assert out.read_bytes() == b"previous model" and dir_listing(tmp_path) == ["m.tflite"]

    # check_parity=False: written anyway, the report says it failed and was not enforced.
    result = export_tflite(tiny_model, out, input_size=SIZE, outputs="map,prob", check_parity=False)
    report = json.loads(result.parity_path.read_text())
    assert not report["passed"] and not report["enforced"] and report["failures"]
    assert read_metadata(out)["name"] == "tiny" and out.stat().st_size > 1000


def test_read_metadata_of_a_file_without_it(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32)])
    def double(x):
        return x * 2.0

    path = tmp_path / "plain.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double)
                     .convert())
    with pytest.raises(ValueError, match="metadata"):
        read_metadata(path)
    assert list_ops(path) == ["MUL"]


# ------------------------------------------------------------------------------------------ command line

@pytest.fixture()
def tiny_files(tiny_model, tmp_path):
    """The tiny model as a .keras file and a directory of 10 PNGs of another size (80×100)."""
    from PIL import Image

    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for i, image in enumerate(synthetic_images(10, (80, 100), seed=5)):
        Image.fromarray(image).save(image_dir / f"{i:02d}.png")
    model_path = tmp_path / "tiny.keras"
    tiny_model.save(model_path)
    return model_path, image_dir


def test_cli_export_and_info(tiny_files, tmp_path, capsys):
    from fastsal_tf.cli import main

    model_path, image_dir = tiny_files
    out = tmp_path / "out" / "tiny_int8.tflite"
    assert main(["export", str(model_path), "--mode", "int8", "--out", str(out), "--size", "64x64",
                 "--outputs", "map,prob", "--map-dtype", "uint8", "--representative", str(image_dir),
                 "--num-representative", "6", "--num-validation", "4", "--training-data", "nothing"]) == 0
    printed = capsys.readouterr().out
    assert "passed" in printed and "saliency_map" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny_int8.parity.json", "tiny_int8.tflite"]
    report = json.loads((tmp_path / "out" / "tiny_int8.parity.json").read_text())
    assert report["num_representative"] == 6 and report["num_images"] == 4 and report["passed"]
    assert read_metadata(out)["training_data"] == "nothing"

    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CONV_2D" in printed and '"export_mode": "int8"' in printed and "saliency_map" in printed
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["source_file"] == "tiny.keras" and "SOFTMAX" in info["ops"]
    assert info["inputs"][0]["shape"] == [1, 64, 64, 3]

    # Without --size the export runs at the Keras model's own input size; the weights' terms go into the metadata.
    own = tmp_path / "own.tflite"
    assert main(["export", str(model_path), "--out", str(own), "--weights-terms", "research use only"]) == 0
    capsys.readouterr()
    assert read_metadata(own)["input"]["shape"] == [1, *SIZE, 3]
    assert read_metadata(own)["weights_terms"] == "research use only" and "training_data" in read_metadata(own)

    assert main(["export", str(model_path), "--mode", "int8", "--out", str(tmp_path / "x.tflite"),
                 "--size", "64x64"]) == 2
    assert "--representative" in capsys.readouterr().err
    assert main(["export", str(model_path), "--out", str(tmp_path / "x.tflite"), "--size", "64x60"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "x.tflite")]) == 2
    assert not (tmp_path / "x.tflite").exists()


def test_convert_py_absl_program(tiny_files, tmp_path, capsys):
    """tflite/convert.py, run in-process (its absl flags parsed as from a command line)."""
    import importlib.util

    model_path, image_dir = tiny_files
    spec = importlib.util.spec_from_file_location("fastsal_convert_script", ROOT / "tflite" / "convert.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    out = tmp_path / "tiny.tflite"
    argv = ["convert.py", f"--model={model_path}", f"--out={out}", "--size=64x64", "--outputs=map,prob",
            "--mode=dynamic", f"--validation={image_dir}", "--json"]
    convert.FLAGS(argv)
    try:
        assert convert.main([]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["parity_passed"] is True and printed["mode"] == "dynamic"
        assert read_metadata(out)["export_mode"] == "dynamic"
        convert.FLAGS(argv + ["--mode=int8"])
        assert convert.main([]) == 1 and "representative" in capsys.readouterr().err
    finally:
        convert.FLAGS.unparse_flags()


# ------------------------------------------------------------------------------------------ authors' weights

def test_authors_pth_fp32_reproduces_reference_logits(shared_dir, tmp_path):
    from fastsal_tf.export.options import load_export_model as load_model

    reference = np.load(shared_dir / "reference" / "vectors_A.npz")
    inputs = reference["inputs"].transpose(0, 2, 3, 1)  # already ImageNet-normalised NCHW → NHWC
    model = load_model(shared_dir / "reference" / "random_A.pth", (192, 256), normalization="none")
    result = export_tflite(model, tmp_path / "random_A.tflite", mode="fp32", input_dtype="float32",
                           outputs=("logits",), validation_images=list(inputs))
    assert result.parity["passed"]
    got = run_tflite(result.path, list(inputs))["logits"]
    assert np.abs(got - reference["logits"].transpose(0, 2, 3, 1)).max() <= 1e-3
