"""The shipped default models (fastsal_tf/assets): they load, predict a proper probability map, agree with
each other where they should, and (with ../shared) score well above the center bias on OSIE validation."""

import hashlib
import pathlib

import numpy as np
import pytest
from PIL import Image

from fastsal_tf import api
from fastsal_tf.metrics import cc

ROOT = pathlib.Path(__file__).resolve().parents[1]
PHOTO = ROOT / "docs" / "example" / "1010_overlay.jpg"  # an 800×600 street scene (with an overlay)
SHIPPED = ("default", "default-keras", "default-int8", "default-c", "fast", "fast-keras", "fast-int8")
# Each shipped FastSal-A: (fp32 LiteRT name, Keras name, int8 LiteRT name, input size, int8 file).
FAMILIES = {"default": ("default", "default-keras", "default-int8", (352, 480), "fastsal_a_352x480_int8.tflite"),
            "fast": ("fast", "fast-keras", "fast-int8", (192, 256), "fastsal_a_int8.tflite")}


@pytest.fixture(scope="module")
def photo():
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def maps(photo):
    return {spec: api.load_model(spec).predict_map(photo) for spec in SHIPPED}


@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_model_predicts_a_probability_map(maps, photo, spec):
    values = maps[spec]
    assert values.shape == photo.shape[:2]
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(values.sum(), 1.0, rtol=1e-6)
    assert values.max() > 5 * values.mean()  # peaked, not a flat map


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_shipped_forms_run_at_their_size_and_int8_matches_keras(maps, family):
    fp32, keras_name, int8, size, _ = FAMILIES[family]
    assert all(api.load_model(spec).input_size == size for spec in (fp32, keras_name, int8))
    assert cc(maps[int8], maps[keras_name]) > 0.99


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_shipped_litert_model_is_its_keras_model(maps, shared_dir, family):
    """The fp32 LiteRT export gives the Keras model's maps on real photos: at the network output to float
    rounding (the export's fp32 bound: max |Δ| ≤ 1e-4 on the [0, 1] map, relative to the peak on the
    probability map) and at the original size."""
    from fastsal_tf.export.spec import OUTPUT_NAMES
    from fastsal_tf.runtime.resolve import load_backend

    fp32, keras_name = FAMILIES[family][:2]
    keras_model = api.load_model(keras_name)
    assert api.load_model(fp32).backend.kind == "litert" and keras_model.backend.kind == "keras"
    stimuli = shared_dir / "data" / "osie" / "data" / "stimuli"
    photos = [PHOTO] + sorted(stimuli.glob("1*.jpg"))[:3]
    frames = np.stack([keras_model.prepare(path).net_input for path in photos])
    heads = keras_model.backend.model(frames.astype(np.float32), training=False)
    for head in ("map", "prob"):
        lite, _ = load_backend(fp32, wanted=OUTPUT_NAMES[head])
        theirs = np.asarray(heads[head])[..., 0]
        assert np.abs(lite.raw(frames) - theirs).max() <= 1e-4 * (1 if head == "map" else theirs.max())
    assert cc(maps[fp32], maps[keras_name]) > 0.99999
    np.testing.assert_allclose(maps[fp32], maps[keras_name], rtol=0, atol=1e-4 * maps[keras_name].max())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_shipped_int8_is_the_export_its_parity_report_describes(family):
    """The int8 file is the one its parity report was written for (bounds enforced, all passed), and it
    was exported with the head in front of the last pixel shuffle (no full-resolution 2 → 1 conv)."""
    import json

    from fastsal_tf.export.flatbuffer import read_model

    *_, size, name = FAMILIES[family]
    model_path = ROOT / "fastsal_tf" / "assets" / name
    data = model_path.read_bytes()
    report = json.loads(model_path.with_name(model_path.stem + ".parity.json").read_text())
    assert report["sha256"] == hashlib.sha256(data).hexdigest() and report["size_bytes"] == len(data)
    assert report["enforced"] and report["passed"] and report["mode"] == "int8" and report["num_images"] == 100
    for output in report["outputs"].values():
        assert output["cc_mean"] >= 0.99 and output["cc_min"] >= 0.98
    graph = read_model(data).subgraphs[0]
    full_resolution_convs = [op for op in graph.operators
                             if len(op.inputs) == 3 and list(graph.tensors[op.outputs[0]].shape) == [1, *size, 1]
                             and len(graph.tensors[op.inputs[1]].shape) == 4]
    assert not full_resolution_convs


def test_shipped_models_agree_on_where_people_look(maps):
    assert cc(maps["default"], maps["default-c"]) > 0.8 and cc(maps["default"], maps["fast"]) > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["default", "default-c", "fast"])
def test_shipped_model_beats_center_bias_on_osie(shared_dir, spec):
    from fastsal_tf.evaluation import run_evaluation

    osie = shared_dir / "data" / "osie"
    if not osie.is_dir():
        pytest.skip("../shared/data/osie is not present")
    report = run_evaluation(spec, "osie", osie, split="validation", limit=20)
    model, center = (scores.means() for scores in report.scores.values())
    assert model["cc"] > 0.7 and model["nss"] > 2.5 and model["auc_judd"] > 0.88 and model["kld"] < 0.6
    assert model["cc"] > center["cc"] + 0.3 and model["nss"] > center["nss"] + 1.5


# Recorded from the original shipped files of commit f2d8a23 (before FastSal described itself), loaded with that
# commit's code: sha256 over the weights (sorted by variable path, path then bytes), the (trainable,
# non-trainable) parameter counts (the backbone BatchNorm layers were saved frozen) and the logits at PIXELS
# for the two images of `fixed_images()`. The re-saved files gave bit-identical outputs on those images.
ORIGINAL = {
    "fastsal_a.keras": ("90eec2cd0e30f7c517b67d5b3eef552991894b4b82a0f41e44522cd2cddf40ba", (3612603, 75024),
                        [[-0.5218683, -1.188116, 0.9124694, -0.4988938, -1.088787, 0.7832109],
                         [-0.440955, -0.8632814, 1.369201, -0.85615, -0.958545, 0.825473]]),
    "fastsal_c.keras": ("f18dfb569a4539f4e0d904f06f24c1663133f3a581441a17af7a8f85b8ef4c7e", (2539937, 68224),
                        [[-0.8179804, -2.360216, 0.3222671, -1.138057, -2.443657, 0.001850723],
                         [-0.3283542, -1.321268, 0.6916555, -1.416788, -2.459366, -0.4858651]]),
}
PIXELS = [(0, 0), (5, 7), (95, 128), (100, 200), (191, 255), (47, 63)]


def fixed_images():
    return np.random.default_rng(18).integers(0, 256, (2, 192, 256, 3), dtype=np.uint8).astype(np.float32)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_shipped_keras_files_describe_themselves_and_kept_their_numbers(name):
    import keras

    from fastsal_tf.models import FastSal, count_parameters, describe

    model = keras.saving.load_model(ROOT / "fastsal_tf" / "assets" / name, compile=False)
    assert isinstance(model, FastSal)
    config = model.get_config()
    assert (config["variant"], config["input_shape"], config["padding"], config["pixel_shuffle"],
            config["normalization"], config["resample"]) == (name[8].upper(), (192, 256, 3), "same", "DCR",
                                                             "tflite_127", "bilinear")
    assert describe(model)["bn_epsilon"] == config["bn_epsilon"] == 1e-3
    digest = hashlib.sha256()
    for weight in sorted(model.weights, key=lambda w: w.path):
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    weights_sha256, parameters, logits = ORIGINAL[name]
    assert digest.hexdigest() == weights_sha256
    assert (count_parameters(model), count_parameters(model, trainable=False)) == parameters
    outputs = model(fixed_images(), training=False)
    got = [[float(np.asarray(outputs["logits"])[n, y, x, 0]) for y, x in PIXELS] for n in range(2)]
    np.testing.assert_allclose(got, logits, rtol=1e-5, atol=1e-6)
    rebuilt = FastSal.from_config(config)  # from_config + weights = the same network, bit for bit
    rebuilt.set_weights(model.get_weights())
    again = rebuilt(fixed_images(), training=False)
    assert all(np.array_equal(np.asarray(again[k]), np.asarray(outputs[k])) for k in outputs)


@pytest.mark.slow
def test_default_is_more_accurate_than_fast_on_osie(shared_dir):
    """The 352x480 default against the 192x256 FastSal-A on the first 20 OSIE validation images, paired per
    image: higher NSS on average (on all 100: +0.25 ± 0.04, MODEL_CARD.md) and on most images."""
    from fastsal_tf.evaluation import run_evaluation

    osie = shared_dir / "data" / "osie"
    if not osie.is_dir():
        pytest.skip("../shared/data/osie is not present")
    report = run_evaluation({"default": api.load_model("default"), "fast": api.load_model("fast")}, "osie", osie,
                            split="validation", limit=20)
    per_image = {name: report.scores[name].per_image for name in ("default", "fast")}
    gains = np.array([per_image["default"][key]["nss"] - per_image["fast"][key]["nss"] for key in per_image["fast"]])
    assert gains.size == 20 and gains.mean() > 0.1 and (gains > 0).mean() > 0.6


def test_default_keras_file_describes_itself():
    import keras

    from fastsal_tf.models import FastSal, describe

    model = keras.saving.load_model(ROOT / "fastsal_tf" / "assets" / "fastsal_a_352x480.keras", compile=False)
    assert isinstance(model, FastSal)
    settings = describe(model)
    assert (settings["variant"], tuple(settings["input_shape"]), settings["padding"], settings["pixel_shuffle"],
            settings["normalization"]) == ("A", (352, 480, 3), "same", "DCR", "tflite_127")
