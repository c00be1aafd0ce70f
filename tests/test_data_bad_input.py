"""Bad input: a DatasetError naming the file, or with skip_bad=True the example skipped and counted;
unusual but valid images (grayscale, RGBA, CMYK, 16-bit, EXIF-rotated) decode to RGB aligned with labels."""

import io
import pathlib
import shutil
import struct
import zlib

import numpy as np
import pytest
import scipy.io
from PIL import Image

from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.images import inspect_image
from fastsal_tf.data.pipeline import PipelineConfig, build_pipeline
from fastsal_tf.data.registry import read_dataset

DATASETS = pathlib.Path(__file__).parent / "data" / "datasets"
RAMP = np.asarray(Image.open(DATASETS / "folder" / "images" / "a.png"))
POINTS_CSV = "x,y\n5,4\n20,10\n"


def encoded(array_or_image, fmt, **options) -> bytes:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def folder(tmp_path, images: dict[str, bytes], fixations: dict[str, str]) -> pathlib.Path:
    """A generic-folder dataset: images/<name> and fixations/<stem>.csv."""
    for name, data in images.items():
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / name).write_bytes(data)
    for stem, text in fixations.items():
        (tmp_path / "fixations").mkdir(exist_ok=True)
        (tmp_path / "fixations" / f"{stem}.csv").write_text(text)
    return tmp_path


JPEG = encoded(RAMP, "JPEG", quality=90)
PNG = encoded(RAMP, "PNG")
BROKEN = {
    "garbage.jpg": b"this is not an image at all",
    "truncated.jpg": JPEG[: len(JPEG) // 2],
    "truncated.png": PNG[: len(PNG) // 2],
    "bad_crc.png": PNG[:60] + bytes([PNG[60] ^ 0xFF]) + PNG[61:],
    "image.tif": encoded(RAMP, "TIFF"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_image_names_the_file(tmp_path, name):
    root = folder(tmp_path, {name: BROKEN[name], "good.png": PNG},
                  {pathlib.Path(name).stem: POINTS_CSV, "good": POINTS_CSV})
    with pytest.raises(DatasetError) as error:
        read_dataset("folder", root)
    assert error.value.path.endswith(name)
    result = read_dataset("folder", root, skip_bad=True)
    assert [e.id for e in result] == ["good"] and result.skipped[0].path.endswith(name)


def test_skipped_examples_leave_a_working_pipeline(tmp_path):
    root = folder(tmp_path, {"bad.jpg": BROKEN["truncated.jpg"], "good.png": PNG},
                  {"bad": POINTS_CSV, "good": POINTS_CSV})
    result = read_dataset("folder", root, skip_bad=True)
    assert "1 examples, 1 skipped" in result.summary()
    batch = next(iter(build_pipeline(result, PipelineConfig(size=(30, 40), sigma_px=2.0))))
    assert batch["image"].shape == (1, 30, 40, 3)


def cmyk_jpeg():
    return encoded(Image.fromarray(RAMP).convert("CMYK"), "JPEG", quality=100)


def png16(gray: bool):
    """A 16-bit PNG of the ramp (values × 257)."""
    if gray:
        return encoded(Image.fromarray(RAMP[..., 0].astype(np.uint16) * 257), "PNG"), np.repeat(RAMP[..., :1], 3, -1)
    rows = b"".join(b"\x00" + (RAMP[i].astype(">u2") * 257).tobytes() for i in range(RAMP.shape[0]))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", RAMP.shape[1], RAMP.shape[0], 16, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return data, RAMP


def exif_rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    return encoded(RAMP, "JPEG", quality=95, exif=exif.tobytes())


VARIANTS = {  # name: (file bytes, expected RGB decode, mean tolerance)
    "exif_rotated.jpg": (exif_rotated_jpeg(), RAMP, 2),  # stored pixels, not rotated: labels refer to them
    "gray.png": (encoded(RAMP[..., 0], "PNG"), np.repeat(RAMP[..., :1], 3, -1), 0),
    "rgba.png": (encoded(np.dstack([RAMP, np.full(RAMP.shape[:2], 7, np.uint8)]), "PNG"), RAMP, 0),
    "palette.gif": (encoded(RAMP, "GIF"), np.asarray(Image.open(io.BytesIO(encoded(RAMP, "GIF"))).convert("RGB")), 0),
    "gray16.png": (*png16(gray=True), 0),
    "rgb16.png": (*png16(gray=False), 0),
    "cmyk.jpg": (cmyk_jpeg(), RAMP, 3),
}


def test_unusual_images_decode_to_aligned_rgb(tmp_path):
    root = folder(tmp_path, {name: data for name, (data, _, _) in VARIANTS.items()},
                  {pathlib.Path(name).stem: POINTS_CSV for name in VARIANTS})
    examples = read_dataset("folder", root)
    config = PipelineConfig(size=(30, 40), sigma_px=2.0, batch_size=None)
    for example, element in zip(examples, build_pipeline(examples, config).as_numpy_iterator()):
        _, expected, tolerance = VARIANTS[example.image_path.name]
        assert np.abs(element["image"] - expected).mean() <= tolerance, example.image_path.name
        assert element["fixation_map"][4, 5, 0] == 1 and element["fixation_map"][10, 20, 0] == 1


def test_exif_rotation_is_not_applied(tmp_path):
    root = folder(tmp_path, {"rotated.jpg": exif_rotated_jpeg()}, {"rotated": POINTS_CSV})
    example = read_dataset("folder", root)[0]
    assert (example.height, example.width) == (30, 40)  # stored, not displayed, size


def test_image_without_labels_and_labels_without_image(tmp_path):
    root = folder(tmp_path, {"a.png": PNG, "b.png": PNG}, {"a": POINTS_CSV, "c": POINTS_CSV})
    with pytest.raises(DatasetError, match="image without labels") as error:
        read_dataset("folder", root)
    assert error.value.path.endswith("b.png")
    result = read_dataset("folder", root, skip_bad=True)
    assert [e.id for e in result] == ["a"]
    assert sorted(pathlib.Path(s.path).name for s in result.skipped) == ["b.png", "c.csv"]


@pytest.mark.parametrize("text, message", [
    ("x,y\n", "no fixations"),
    ("x,y\n5,4\n40.5,3\n", "outside"),
    ("x,y\n5,nan\n", "NaN"),
    ("col,row\n5,4\n", "header"),
])
def test_bad_fixation_lists(tmp_path, text, message):
    root = folder(tmp_path, {"a.png": PNG}, {"a": text})
    with pytest.raises(DatasetError, match=message) as error:
        read_dataset("folder", root)
    assert error.value.path.endswith("a.csv")


def test_outside_fixations_can_be_dropped_and_counted(tmp_path):
    root = folder(tmp_path, {"a.png": PNG}, {"a": "x,y\n5,4\n-0.5,29.5\n-0.6,3\n39,30\n"})
    result = read_dataset("folder", root, outside="drop")
    np.testing.assert_array_equal(result[0].fixations, [[5, 4], [-0.5, 29.5]])
    assert result.dropped_fixations == 2 and "2 fixations outside the image dropped" in result.summary()


def test_map_of_another_size(tmp_path):
    root = folder(tmp_path, {"a.png": PNG}, {})
    (root / "maps").mkdir()
    (root / "maps" / "a.png").write_bytes(encoded(np.zeros((20, 20), np.uint8), "PNG"))
    with pytest.raises(DatasetError, match="map is 20x20 but its image is 40x30"):
        read_dataset("folder", root)


def write_mat_v73(path):
    header = b"MATLAB 7.3 MAT-file".ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    path.write_bytes(header + b"\x00" * 64)


@pytest.mark.parametrize("case", ["wrong variable", "v7.3", "garbage"])
def test_folder_mat_with_unexpected_structure(tmp_path, case):
    root = folder(tmp_path, {"a.png": PNG}, {})
    (root / "fixations").mkdir()
    path = root / "fixations" / "a.mat"
    if case == "wrong variable":
        scipy.io.savemat(path, {"fix": np.ones((2, 2))})
    elif case == "v7.3":
        write_mat_v73(path)
    else:
        path.write_bytes(b"\x00" * 300)
    with pytest.raises(DatasetError) as error:
        read_dataset("folder", root)
    assert error.value.path == str(path)


def copy_dataset(name, tmp_path):
    shutil.copytree(DATASETS / name, tmp_path / name)
    return tmp_path / name


def test_dataset_mat_files_with_unexpected_structure(tmp_path):
    salicon = copy_dataset("salicon", tmp_path)
    mat = salicon / "fixations" / "train" / "COCO_train2014_000000000001.mat"
    scipy.io.savemat(mat, {"image": "x", "resolution": np.array([[30, 40]])})
    with pytest.raises(DatasetError, match="no struct array 'gaze'"):
        read_dataset("salicon", salicon, "train")
    cat = copy_dataset("cat2000", tmp_path)
    scipy.io.savemat(cat / "trainSet" / "FIXATIONLOCS" / "Art" / "002.mat", {"fixLocs": np.ones((3, 3))})
    with pytest.raises(DatasetError, match="expected one 30x40 array"):
        read_dataset("cat2000", cat, "train")
    assert [e.id for e in read_dataset("cat2000", cat, "train", skip_bad=True)] == ["Action/001"]
    osie = copy_dataset("osie", tmp_path)
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = {"img": "1001.jpg", "people": np.zeros(2)}
    scipy.io.savemat(osie / "data" / "eye" / "fixations.mat", {"fixations": cells})
    with pytest.raises(DatasetError, match="no field 'subjects'") as error:
        read_dataset("osie", osie, "train", split_file=osie / "osie_split.json")
    assert "fixations.mat" in error.value.path
    write_mat_v73(osie / "data" / "eye" / "fixations.mat")
    with pytest.raises(DatasetError, match="v7.3"):
        read_dataset("osie", osie)


def test_inspect_image_on_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        inspect_image(tmp_path / "none.jpg")
