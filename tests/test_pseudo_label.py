"""Pseudo-labelling: teachers (.keras FastSal, folder of maps, SavedModel, .tflite) over an image folder or a
dataset split into sharded TFRecords; restart skips finished shards; bad inputs."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.geometry import resize_image
from fastsal_tf.data.pseudo_labels import list_shards, read_pseudo_labels, shard_path
from fastsal_tf.models import build_fastsal
from fastsal_tf.train.label_teachers import output_to_label
from fastsal_tf.train.pseudo_label import PseudoLabelConfig, pseudo_label, resize_label

ROOT = pathlib.Path(__file__).resolve().parents[1]
OSIE = ROOT / "tests" / "data" / "datasets" / "osie"
IDS = ["a", "b", "c", "d", "e"]
IMAGE_HW = (48, 80)
PNG_TOLERANCE = 0.5 / 255 + 1e-6


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i, image_id in enumerate(IDS):
        pixels = rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{image_id}.{'png' if i % 2 else 'jpg'}")
    return folder


@pytest.fixture(scope="module")
def fastsal_teacher(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_fastsal("A", (64, 64, 3))
    logits = model.get_layer("logits")  # spread the random network's output so the maps are not flat
    logits.set_weights([logits.kernel.numpy() * 3000.0, logits.bias.numpy()])
    path = tmp_path_factory.mktemp("teacher") / "tiny_fastsal.keras"
    model.save(path)
    return path, model


def expected_outputs(model, folder, image_id):
    path = next(folder.glob(f"{image_id}.*"))
    image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
    outputs = model(resize_image(image, (64, 64))[None], training=False)
    return {k: v.numpy()[0, ..., 0].astype(np.float64) for k, v in outputs.items()}


def read_all(directory):
    return [list(read_pseudo_labels([f]).as_numpy_iterator()) for f in list_shards(directory)]


def config(out_dir, teacher, **options):
    return PseudoLabelConfig(out_dir=str(out_dir), teacher=str(teacher), **options)


@pytest.fixture(scope="module")
def map_shards(images, fastsal_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("map_shards")
    calls = []
    report = pseudo_label(config(out, fastsal_teacher[0], images=str(images), num_shards=2, label_kind="map",
                                 teacher_name="tiny", teacher_version="v1", batch_size=2),
                          progress=lambda done, total: calls.append((done, total)))
    return out, report, calls


def test_fastsal_teacher_map_shards(map_shards, images, fastsal_teacher):
    out, report, calls = map_shards
    assert [(s.index, s.status, s.count) for s in report.shards] == [(0, "written", 3), (1, "written", 2)]
    assert calls[-1] == (5, 5)
    shards = read_all(out)
    assert [[r["id"].decode() for r in shard] for shard in shards] == [["a", "c", "e"], ["b", "d"]]
    spread = []
    for record in shards[0] + shards[1]:
        assert (record["kind"], record["teacher"], record["teacher_version"]) == (b"map", b"tiny", b"v1")
        assert (record["height"], record["width"]) == IMAGE_HW and record["label"].shape == (64, 64, 1)
        expected = expected_outputs(fastsal_teacher[1], images, record["id"].decode())["map"]
        np.testing.assert_allclose(record["label"][..., 0], expected, atol=PNG_TOLERANCE)
        spread.append(expected.max() - expected.min())
    assert min(spread) > 0.1  # the comparison means something


def test_fastsal_teacher_prob_float16_at_image_size(images, fastsal_teacher, tmp_path):
    report = pseudo_label(config(tmp_path, fastsal_teacher[0], images=str(images), num_shards=1, shard_index=0,
                                 label_kind="prob", label_size="image", label_format="float16"))
    assert report.teacher == "tiny_fastsal" and report.teacher_version.startswith("sha256:")
    for record in read_all(tmp_path)[0]:
        assert record["kind"] == b"prob" and record["label"].shape == (*IMAGE_HW, 1)
        assert record["label"].sum() == pytest.approx(1.0, abs=1e-4)
        prob = expected_outputs(fastsal_teacher[1], images, record["id"].decode())["prob"]
        np.testing.assert_allclose(record["label"][..., 0], resize_label(prob, IMAGE_HW, "prob"), rtol=2e-3, atol=1e-9)


def test_restart_skips_finished_shards(images, tmp_path):
    write_maps(tmp_path / "maps", IDS)
    out = tmp_path / "out"
    run = config(out, tmp_path / "maps", images=str(images), num_shards=2, label_kind="map")
    pseudo_label(run)
    files = [shard_path(out, i, 2) for i in range(2)]
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    report = pseudo_label(run)
    assert [(s.status, s.count) for s in report.shards] == [("skipped", 3), ("skipped", 2)]
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 2])  # a damaged shard (e.g. half copied) is redone
    report = pseudo_label(run)
    assert [s.status for s in report.shards] == ["skipped", "written"] and files[1].read_bytes() == data
    assert os.stat(files[0]).st_mtime_ns == mtimes[0]
    files[1].write_bytes(data[:-5])  # a cut inside a record
    assert [s.status for s in pseudo_label(run).shards] == ["skipped", "written"] and files[1].read_bytes() == data
    with pytest.raises(ValueError, match="use another out_dir"):  # shards of another teacher
        pseudo_label(config(out, tmp_path / "maps", images=str(images), num_shards=2, teacher_name="other"))
    more = tmp_path / "more"
    more.mkdir()
    for path in [*images.iterdir(), tmp_path / "maps" / "a.png"]:
        (more / (path.name if path.parent == images else "0.png")).write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="images or num_shards changed"):  # sorted list: 0, a, b, ... → shifted
        pseudo_label(config(out, tmp_path / "maps", images=str(more), num_shards=2, label_kind="map"))
    with pytest.raises(ValueError, match="another shard count"):
        pseudo_label(config(out, tmp_path / "maps", images=str(images), num_shards=3, label_kind="map"))


def write_maps(folder, ids, hw=(12, 20)):
    folder.mkdir()
    maps = {}
    for i, image_id in enumerate(ids):
        values = np.random.default_rng(i).integers(1, 256, hw, dtype=np.uint8)
        Image.fromarray(values).save(folder / f"{image_id}.png")
        maps[image_id] = values / 255.0
    return maps


def test_folder_of_maps_teacher(images, tmp_path):
    maps = write_maps(tmp_path / "maps", IDS)
    report = pseudo_label(config(tmp_path / "out", tmp_path / "maps", images=str(images), num_shards=2,
                                 label_kind="map", teacher_version="salgan-2017"))
    assert report.teacher == "maps" and sum(s.count for s in report.shards) == 5
    for record in sum(read_all(tmp_path / "out"), []):
        assert record["teacher_version"] == b"salgan-2017" and record["label"].shape == (12, 20, 1)
        np.testing.assert_allclose(record["label"][..., 0], maps[record["id"].decode()], atol=PNG_TOLERANCE)
    (tmp_path / "maps" / "c.png").unlink()
    with pytest.raises(DatasetError, match=r"maps/c: no precomputed teacher map"):
        pseudo_label(config(tmp_path / "out2", tmp_path / "maps", images=str(images), label_kind="prob"))
    assert not list((tmp_path / "out2").glob("*"))  # the unfinished shard was discarded
    report = pseudo_label(config(tmp_path / "out2", tmp_path / "maps", images=str(images), label_kind="prob",
                                 skip_bad=True))
    assert report.shards[0].count == 4 and [s.path for s in report.shards[0].skipped] == [str(tmp_path / "maps" / "c")]
    record = read_all(tmp_path / "out2")[0][0]
    assert record["kind"] == b"prob" and record["label"].sum() == pytest.approx(1.0, abs=1e-5)


def test_dataset_split_with_npy_maps(tmp_path):
    (tmp_path / "maps").mkdir()
    for stem in ("1010", "1024"):
        np.save(tmp_path / "maps" / f"{stem}.npy", np.full((6, 8), 0.25, np.float32))
    pseudo_label(config(tmp_path / "out", tmp_path / "maps", dataset="osie", data_dir=str(OSIE), split="validation",
                        split_file=str(OSIE / "osie_split.json"), label_kind="map", label_format="float16"))
    records = read_all(tmp_path / "out")[0]
    assert [r["id"] for r in records] == [b"1010", b"1024"]
    np.testing.assert_allclose(records[0]["label"], 0.25)


def test_bad_inputs(images, tmp_path):
    no_map = tmp_path / "features.keras"
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Conv2D(8, 1, name="features")(inputs)).save(no_map)
    with pytest.raises(ValueError, match=r"no usable teacher output .*features \(None, 32, 32, 8\)"):
        pseudo_label(config(tmp_path / "o1", no_map, images=str(images)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in the folder"):
        pseudo_label(config(tmp_path / "o2", no_map, images=str(tmp_path / "empty")))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes((images / "a.jpg").read_bytes())
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    write_maps(tmp_path / "maps", ["a", "b"])
    with pytest.raises(DatasetError, match=r"bad/b.png: unreadable or corrupt image"):
        pseudo_label(config(tmp_path / "o3", tmp_path / "maps", images=str(bad)))
    assert not list((tmp_path / "o3").glob("*"))
    report = pseudo_label(config(tmp_path / "o3", tmp_path / "maps", images=str(bad), skip_bad=True))
    assert report.shards[0].count == 1 and report.shards[0].skipped[0].path == str(bad / "b.png")
    for options, message in [(dict(num_shards=2, shard_index=2), "not in"), (dict(label_kind="density"), "label_kind"),
                             (dict(images="", dataset=""), "either an image folder")]:
        with pytest.raises(ValueError, match=message):
            pseudo_label(config(tmp_path / "o4", tmp_path / "maps", **{"images": str(images), **options}))
    with pytest.raises(ValueError, match="teacher not found"):
        pseudo_label(config(tmp_path / "o5", tmp_path / "missing.keras", images=str(images)))


def test_output_to_label_conversions():
    logits = np.array([[0.0, 2.0], [-1.0, 1.0]])
    sigmoid = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(output_to_label(logits, "logits", "map"), sigmoid)
    softmax = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(output_to_label(logits, "logits", "prob"), softmax, rtol=1e-6)
    np.testing.assert_allclose(output_to_label(sigmoid, "map", "prob"), softmax, rtol=1e-4)  # FastSal's prob
    np.testing.assert_allclose(output_to_label(softmax, "prob", "map"), softmax / softmax.max())


def test_ensemble_teacher_is_the_mean_of_its_members(images, fastsal_teacher, tmp_path):
    keras.utils.set_random_seed(1)
    second = build_fastsal("A", (64, 64, 3))
    logits = second.get_layer("logits")
    logits.set_weights([logits.kernel.numpy() * 3000.0, logits.bias.numpy()])
    (tmp_path / "b").mkdir()
    second.save(tmp_path / "b" / "tiny_fastsal.keras")
    spec = f"{fastsal_teacher[0]},{tmp_path / 'b' / 'tiny_fastsal.keras'}"
    report = pseudo_label(config(tmp_path / "out", spec, images=str(images), label_kind="prob", label_format="float16"))
    assert report.teacher.startswith("ensemble:") and report.teacher.endswith("+b/tiny_fastsal")
    assert report.teacher_version.startswith("sha256:")
    gaps = []
    for record in read_all(tmp_path / "out")[0]:
        image_id = record["id"].decode()
        probs = [expected_outputs(m, images, image_id)["prob"] for m in (fastsal_teacher[1], second)]
        label = record["label"][..., 0].astype(np.float64)
        label /= label.sum()  # float16 storage: renormalise as the reader of a prob label does
        np.testing.assert_allclose(label, (probs[0] + probs[1]) / 2, rtol=2e-3, atol=1e-7)
        gaps.append(np.abs(probs[0] - probs[1]).max() / probs[0].max())
    assert min(gaps) > 0.1  # the members disagree, so the mean is a real check


def test_ensemble_teacher_bad_members(images, fastsal_teacher, tmp_path):
    other = tmp_path / "other.keras"
    build_fastsal("A", (32, 64, 3)).save(other)
    with pytest.raises(ValueError, match=r"different input frames \[\(32, 64\), \(64, 64\)\]"):
        pseudo_label(config(tmp_path / "o1", f"{fastsal_teacher[0]},{other}", images=str(images)))
    write_maps(tmp_path / "maps", IDS)
    with pytest.raises(ValueError, match=r"maps: a folder of maps cannot be an ensemble member"):
        pseudo_label(config(tmp_path / "o2", f"{fastsal_teacher[0]},{tmp_path / 'maps'}", images=str(images)))
    with pytest.raises(ValueError, match="each teacher once"):
        pseudo_label(config(tmp_path / "o3", f"{fastsal_teacher[0]},{fastsal_teacher[0]}", images=str(images)))
    (tmp_path / "corrupt.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"corrupt.keras: not a Keras model file"):
        pseudo_label(config(tmp_path / "o5", f"{fastsal_teacher[0]},{tmp_path / 'corrupt.keras'}", images=str(images)))
    with pytest.raises(ValueError, match=r"missing.keras: teacher not found"):
        pseudo_label(config(tmp_path / "o4", f"{fastsal_teacher[0]},{tmp_path / 'missing.keras'}", images=str(images)))
    assert not [p for p in tmp_path.iterdir() if p.name in ("o1", "o2", "o3", "o4", "o5")]  # nothing written


def test_savedmodel_and_tflite_teachers(images, tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(1, 3, padding="same", name="conv")(keras.layers.Rescaling(1 / 255.0)(inputs))
    model = keras.Model(inputs, {"saliency_map": keras.layers.Activation("sigmoid")(x), "extra": inputs})
    model.export(str(tmp_path / "saved"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    (tmp_path / "teacher.tflite").write_bytes(converter.convert())
    results = {}
    for name in ("saved", "teacher.tflite"):
        pseudo_label(config(tmp_path / f"out_{name}", tmp_path / name, images=str(images), label_kind="map",
                            label_format="float16"))
        results[name] = {r["id"]: r["label"] for r in read_all(tmp_path / f"out_{name}")[0]}
    image = tf.io.decode_image((images / "a.jpg").read_bytes(), channels=3)
    expected = model(resize_image(image, (32, 32))[None])["saliency_map"].numpy()[0]
    for name, labels in results.items():
        np.testing.assert_allclose(labels[b"a"], expected, atol=2e-3, err_msg=name)


@pytest.mark.slow
def test_pseudo_label_program(images, tmp_path):
    write_maps(tmp_path / "maps", IDS)
    command = [sys.executable, str(ROOT / "training" / "pseudo_label.py"), f"--teacher={tmp_path / 'maps'}",
               f"--images={images}", f"--out_dir={tmp_path / 'out'}", "--num_shards=2", "--shard_index=1",
               "--teacher_name=precomputed", "--label_kind=map"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pseudo_label: 2/2 images" in done.stderr and "images/s" in done.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["pseudo_labels-00001-of-00002.tfrecord"]
    (tmp_path / "maps" / "c.png").unlink()  # c is in shard 0
    bad = subprocess.run(command[:-3] + ["--shard_index=0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[-1].startswith("pseudo_label: error: ")


def test_flip_averaged_labels_of_a_folder_with_sub_folders(images, fastsal_teacher, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for image_id, target in (("a", folder / "a.jpg"), ("b", folder / "sub" / "b.png")):
        target.write_bytes(next(images.glob(f"{image_id}.*")).read_bytes())
    path, model = fastsal_teacher
    report = pseudo_label(config(tmp_path / "out", path, images=str(folder), label_kind="map", label_format="float16",
                                 flip=True))
    assert report.teacher == "tiny_fastsal+flip"
    records = read_all(tmp_path / "out")[0]
    assert [r["id"].decode() for r in records] == ["a", "sub/b"]
    for record, image_id in zip(records, ("a", "b")):
        plain = expected_outputs(model, images, image_id)["map"]
        image = tf.io.decode_image(next(images.glob(f"{image_id}.*")).read_bytes(), channels=3)
        mirrored_input = resize_image(image, (64, 64))[None][:, :, ::-1]
        mirrored = model(mirrored_input, training=False)["map"].numpy()[0, :, ::-1, 0]
        np.testing.assert_allclose(record["label"][..., 0], (plain + mirrored) / 2, atol=2e-3)
        assert np.abs(plain - mirrored).max() > 0.01  # the random teacher is not mirror-symmetric
    write_maps(tmp_path / "maps", ["a"])
    with pytest.raises(ValueError, match="flip averaging needs a model teacher"):
        pseudo_label(config(tmp_path / "out2", tmp_path / "maps", images=str(folder), flip=True))
