"""GPU-delegate compatibility of exports (fastsal_tf.export.gpu_compat) and the gpu_friendly export: tiny
64×64 FastSal models. The LiteRT GPU run needs a Vulkan device (chromium's SwiftShader) and skips without."""

import json
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

from fastsal_tf.export import ExportError, export_tflite, list_ops, read_metadata, run_tflite
from fastsal_tf.export.gpu_compat import gpu_compatibility, tf_analyzer_report
from fastsal_tf.export.gpu_friendly import gpu_friendly_model, sliced_pixel_shuffle
from fastsal_tf.export.images import synthetic_images
from fastsal_tf.models import TF_NATIVE, TORCH_COMPATIBLE, build_fastsal
from fastsal_tf.models.layers import PixelShuffle

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.litert_gpu import find_vulkan_icd, litert_gpu_run  # noqa: E402  (GPU tooling lives in benchmarks/)

SIZE = (64, 64)


@pytest.fixture(scope="module")
def images():
    return synthetic_images(4, SIZE, seed=7)


@pytest.fixture(scope="module")
def crd_models(images, random_fastsal):
    """Authors'-style (TORCH_COMPATIBLE: CRD pixel shuffle → GATHER) FastSal-A and -C, random weights."""
    return random_fastsal(TORCH_COMPATIBLE, images[:2], SIZE)


@pytest.fixture(scope="module")
def friendly_a(crd_models, images, tmp_path_factory):
    """The gpu_friendly fp32 export of the CRD FastSal-A (float input: no CAST at all)."""
    out = tmp_path_factory.mktemp("friendly") / "A_gpu.tflite"
    result = export_tflite(crd_models["A"], out, input_size=SIZE, input_dtype="float32",
                           outputs="map,prob,logits", validation_images=images, gpu_friendly=True)
    return out, result


def _convert(fn, spec):
    function = tf.function(fn, input_signature=[spec], autograph=False).get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([function]).convert()


@pytest.mark.parametrize("variant", ["A", "C"])
def test_check_lists_every_op_of_a_native_export(variant, images, tmp_path):
    model = build_fastsal(variant, (*SIZE, 3), **TF_NATIVE)
    out = tmp_path / f"{variant}.tflite"
    export_tflite(model, out, input_size=SIZE, outputs="map,prob", validation_images=images[:1])
    report = gpu_compatibility(out)
    assert {v.op for v in report.ops} == set(list_ops(out))
    assert [v.index for v in report.ops] == sorted(v.index for v in report.ops)
    # uint8 input: only its CAST falls back to the CPU, before the single GPU partition.
    assert report.verdict == "edge_fallback" and report.unsupported == ["CAST"] and report.cpu_ops == {"CAST": 1}
    assert report.gpu_partitions == 1 and report.ops[0].op == "CAST" and not report.ops[0].on_gpu
    summary = report.summary()
    for op in ("DEPTH_TO_SPACE", "SOFTMAX", "RESHAPE", "LOGISTIC", "CONV_2D"):
        assert summary[op]["on_gpu"] == summary[op]["count"] > 0
    if variant == "C":  # align_corners=True bilinear upsampling
        assert summary["RESIZE_BILINEAR"]["on_gpu"] == 3
    assert "UINT8" in summary["CAST"]["reasons"][0]
    json.dumps(report.to_dict())
    assert "CAST" in report.format()
    assert gpu_compatibility(out.read_bytes()).to_dict() == report.to_dict()


def test_rules_on_small_graphs():
    spec = tf.TensorSpec((1, 8, 8, 4), tf.float32)
    # An op without a GPU parser between supported ones cuts the graph in two GPU partitions.
    split = gpu_compatibility(_convert(lambda x: tf.nn.relu(tf.round(tf.nn.relu(x) * 3.0)) * 2.0, spec))
    assert split.verdict == "split" and split.unsupported == ["ROUND"] and split.gpu_partitions == 2
    assert next(v for v in split.ops if v.op == "ROUND").reason == "Operation is not supported."
    # No parser for ARG_MAX, and its int64 output is no GPU type for the CAST either: nothing on the GPU.
    argmax = gpu_compatibility(_convert(lambda x: tf.cast(tf.argmax(x, axis=-1), tf.float32), spec))
    assert argmax.verdict == "none" and argmax.unsupported == ["ARG_MAX", "CAST"]
    # A supported op on int32 tensors is refused (tensor types), the float ↔ int32 CASTs are not.
    int32 = gpu_compatibility(_convert(lambda x: tf.cast(tf.cast(x, tf.int32) * 2, tf.float32), spec))
    assert [(v.op, v.reason) for v in int32.ops] == [
        ("CAST", ""), ("MUL", "OP is supported, but tensor type/shape isn't compatible."), ("CAST", "")]
    # TF's own checker: the report is captured and parsed (its verdict is not relied on, see gpu_compat).
    analyzer = tf_analyzer_report(_convert(lambda x: tf.nn.relu(x), spec))
    assert set(analyzer) == {"compatible", "warnings"} and isinstance(analyzer["warnings"], list)


def test_sliced_pixel_shuffle_equals_the_crd_gather():
    x = tf.random.stateless_normal((2, 3, 5, 4 * 7), seed=(1, 2))
    reference = PixelShuffle(2, "CRD")(x)
    assert np.array_equal(np.asarray(sliced_pixel_shuffle(x, 2)), np.asarray(reference))


@pytest.mark.parametrize("variant", ["A", "C"])
def test_gpu_friendly_export_is_equivalent_and_fully_delegated(variant, crd_models, friendly_a, images, tmp_path):
    model = crd_models[variant]
    normal = tmp_path / "normal.tflite"
    export_tflite(model, normal, input_size=SIZE, input_dtype="float32", outputs="map,prob,logits",
                  validation_images=images)
    before = gpu_compatibility(normal)
    assert "GATHER" in before.unsupported and before.verdict == "split" and before.gpu_partitions > 1
    assert gpu_friendly_model(model) is not model
    assert not any(isinstance(l, PixelShuffle) and l.order == "CRD" for l in gpu_friendly_model(model).layers)

    if variant == "A":
        friendly, result = friendly_a
    else:
        friendly = tmp_path / "friendly.tflite"
        result = export_tflite(model, friendly, input_size=SIZE, input_dtype="float32", outputs="map,prob,logits",
                               validation_images=images, gpu_friendly=True)
    ops = list_ops(friendly)
    assert "GATHER" not in ops and "STRIDED_SLICE" in ops and result.parity["passed"]
    after = gpu_compatibility(friendly)
    assert after.verdict == "full" and after.unsupported == [] and after.gpu_partitions == 1
    assert result.parity["gpu_delegate"]["verdict"] == "full" and read_metadata(friendly)["gpu_friendly"] is True

    floats = [image.astype(np.float32) for image in images]
    want, got = run_tflite(normal, floats), run_tflite(friendly, floats)
    for name in want:
        assert float(np.abs(got[name] - want[name]).max()) <= 1e-5, name


def test_gpu_friendly_leaves_native_models_alone_and_refuses_a_uint8_map(tmp_path):
    model = build_fastsal("A", (*SIZE, 3), **TF_NATIVE)
    assert gpu_friendly_model(model) is model
    with pytest.raises(ExportError, match="float32 saliency map"):
        export_tflite(model, tmp_path / "m.tflite", input_size=SIZE, map_dtype="uint8", gpu_friendly=True)
    assert list(tmp_path.iterdir()) == []


def test_cli_export_gpu_friendly(crd_models, tmp_path, capsys):
    from fastsal_tf.cli import main

    path = tmp_path / "crd_c.keras"
    crd_models["C"].save(path)
    out = tmp_path / "c_gpu.tflite"
    assert main(["export", str(path), "--out", str(out), "--size", "64x64", "--outputs", "map",
                 "--num-validation", "1", "--gpu-friendly", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "GATHER" not in printed["ops"] and printed["gpu_delegate"]["cpu_ops"] == {"CAST": 1}
    assert printed["gpu_delegate"]["verdict"] == "edge_fallback"  # uint8 input: its CAST on the CPU


@pytest.mark.skipif(find_vulkan_icd() is None, reason="no Vulkan device (e.g. chromium's SwiftShader) for LiteRT's GPU")
def test_litert_gpu_accelerator_runs_the_gpu_friendly_export(friendly_a, images):
    out, _ = friendly_a
    result = litert_gpu_run(out, images[0][None].astype(np.float32))
    assert result["compiled"] and result["fully_accelerated"] and result["unsupported"] == {}, result
    assert result["max_abs_diff"]["saliency_map"] <= 1e-4 and result["max_abs_diff"]["probability_map"] <= 1e-5
