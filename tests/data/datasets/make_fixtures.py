"""Writes the tiny dataset fixtures beside this file (run it again after changing it; outputs are committed).

Every image is 40×30 (W×H) with a coordinate ramp: R = 6·x + 10, G = 8·y + 10, B = 0 (x, y: 0-based pixel
indices), so a test can read off where any output pixel came from. Each dataset gets label files in its own
format for the fixations in FIXATIONS (internal convention: (x, y), 0-based, pixel centres at integers).
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import scipy.io
from PIL import Image

from fastsal_tf.fixations import density_map, rasterize

HERE = pathlib.Path(__file__).resolve().parent
HEIGHT, WIDTH = 30, 40
# Integer points (every format can hold them) for images "a" and "b"; OSIE adds fractional ones.
FIXATIONS = {
    "a": np.array([[5, 4], [20, 10], [33, 25], [12, 20], [20, 10]], dtype=np.float64),
    "b": np.array([[8, 6], [30, 8], [17, 22]], dtype=np.float64),
}
OSIE_FIXATIONS = {
    "1001": np.array([[5.3, 4.1], [20.0, 10.5], [33.9, 25.0]]),
    "1002": np.array([[12.0, 20.0], [30.2, 8.8]]),
    "1010": np.array([[8.0, 6.0], [17.5, 22.5], [36.1, 3.2]]),
    "1024": np.array([[4.4, 26.6]]),
}
EYECROWD_FIXATIONS = {
    "001": np.array([[5.3, 4.1], [20.0, 10.5], [33.9, 25.0], [1.0, 1.0]]),
    "002": np.array([[12.0, 20.0], [30.2, 8.8]]),
    "003": np.array([[0.0, 29.0], [39.0, 0.0]]),
}
# rss2015: image "1" is 40×30, image "2" is 30×40 (portrait); (41.0, 3.0) lies outside image 1.
RSS2015_FIXATIONS = {
    "1": np.array([[5.0, 4.0], [20.5, 10.0], [33.0, 25.5], [41.0, 3.0]]),
    "2": np.array([[3.0, 35.0], [25.0, 2.0]]),
}


def ramp() -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([6 * x + 10, 8 * y + 10, np.zeros_like(x)], axis=-1).astype(np.uint8)


def save_image(path: pathlib.Path, array: np.ndarray, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)


def save_jpeg(path: pathlib.Path) -> None:
    save_image(path, ramp(), quality=90)


def continuous_map(points: np.ndarray) -> np.ndarray:
    """uint8 (H, W) map: the density (sigma 3 px) scaled to max 255."""
    density = density_map(rasterize(points, (HEIGHT, WIDTH)), 3.0)
    return np.round(density / density.max() * 255).astype(np.uint8)


def binary_map(points: np.ndarray) -> np.ndarray:
    return rasterize(points, (HEIGHT, WIDTH)).astype(np.uint8)


def salicon(root: pathlib.Path, release: str) -> None:
    """images/{train,val,test}, maps/{train,val}, fixations/{train,val} (.mat, gaze N×1 or 1×N)."""
    names = {"train": ("COCO_train2014_000000000001", "a"), "val": ("COCO_val2014_000000000002", "b")}
    for folder, (name, key) in names.items():
        save_jpeg(root / "images" / folder / f"{name}.jpg")
        save_image(root / "maps" / folder / f"{name}.png", continuous_map(FIXATIONS[key]))
        observers = np.array_split(FIXATIONS[key] + 1.0, 2)  # [x, y] 1-based, two observers
        gaze = np.empty((2, 1) if release == "2017" else (1, 2),
                        dtype=[("location", object), ("timestamp", object), ("fixations", object)])
        for k, fixations in enumerate(observers):  # a MATLAB struct array, one entry per observer
            gaze.flat[k] = (fixations, np.arange(len(fixations), dtype=float), fixations)
        (root / "fixations" / folder).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "fixations" / folder / f"{name}.mat",
                         {"image": name, "resolution": np.array([[HEIGHT, WIDTH]]), "gaze": gaze})
    save_jpeg(root / "images" / "test" / "COCO_test2014_000000000003.jpg")


def salicon_api(root: pathlib.Path) -> None:
    """annotations/fixations_train2014.json ([row, col] 1-based, one annotation per observer)."""
    images, annotations = [], []
    for image_id, key in ((1, "a"), (2, "b")):
        name = f"COCO_train2014_{image_id:012d}.jpg"
        save_jpeg(root / "images" / "train2014" / name)
        images.append({"id": image_id, "file_name": name, "height": HEIGHT, "width": WIDTH})
        for worker, points in enumerate(np.array_split(FIXATIONS[key], 2)):
            rows_cols = (points[:, ::-1] + 1).astype(int).tolist()
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "worker_id": worker,
                                "fixations": rows_cols})
    path = root / "annotations" / "fixations_train2014.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations, "type": "fixations"}))


def mit(root: pathlib.Path) -> None:
    """MIT1003: ALLSTIMULI/<name>.jpeg, ALLFIXATIONMAPS/<name>_fixMap.jpg and _fixPts.jpg; MIT300 images."""
    for key in ("a", "b"):
        save_jpeg(root / "mit1003" / "ALLSTIMULI" / f"{key}.jpeg")
        maps = root / "mit1003" / "ALLFIXATIONMAPS"
        save_image(maps / f"{key}_fixMap.jpg", continuous_map(FIXATIONS[key]), quality=95)
        save_image(maps / f"{key}_fixPts.jpg", binary_map(FIXATIONS[key]) * 255, quality=95)
        recovered = np.argwhere(np.asarray(Image.open(maps / f"{key}_fixPts.jpg")) > 127)[:, ::-1]
        assert sorted(map(tuple, recovered)) == sorted(set(map(tuple, FIXATIONS[key].astype(int))))
        save_jpeg(root / "mit300" / f"i{key}.jpg")


def cat2000(root: pathlib.Path) -> None:
    """trainSet/{Stimuli,FIXATIONMAPS,FIXATIONLOCS}/<Category>/, testSet/Stimuli/<Category>/."""
    for category, name, key in (("Action", "001", "a"), ("Art", "002", "b")):
        save_jpeg(root / "trainSet" / "Stimuli" / category / f"{name}.jpg")
        save_image(root / "trainSet" / "FIXATIONMAPS" / category / f"{name}.jpg", continuous_map(FIXATIONS[key]))
        (root / "trainSet" / "FIXATIONLOCS" / category).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "trainSet" / "FIXATIONLOCS" / category / f"{name}.mat",
                         {"fixLocs": binary_map(FIXATIONS[key]).astype(bool)})
    save_jpeg(root / "testSet" / "Stimuli" / "Action" / "101.jpg")


def nus_layout(root: pathlib.Path, fixations: dict[str, np.ndarray]) -> None:
    """data/stimuli/<name>.jpg, data/eye/fixations.mat (cell array of structs, fix_x/fix_y 1-based)."""
    cells = np.empty((len(fixations), 1), dtype=object)
    for index, (name, points) in enumerate(fixations.items()):
        save_jpeg(root / "data" / "stimuli" / f"{name}.jpg")
        subjects = np.empty((2, 1), dtype=object)
        for k, part in enumerate(np.array_split(points + 1.0, 2)):
            subjects[k, 0] = {"fix_x": part[:, 0][None, :], "fix_y": part[:, 1][None, :],
                              "fix_duration": np.full((1, len(part)), 200, dtype=np.uint16)}
        cells[index, 0] = {"img": f"{name}.jpg", "subjects": subjects}
    (root / "data" / "eye").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "data" / "eye" / "fixations.mat", {"fixations": cells})


def osie(root: pathlib.Path) -> None:
    """The NUS layout and a fixture split file (the real split lists 1001, 1002 in train and 1010, 1024 in
    validation too)."""
    nus_layout(root, OSIE_FIXATIONS)
    split = {"about": "fixture split", "train": ["1001.jpg", "1002.jpg"], "validation": ["1010.jpg", "1024.jpg"]}
    (root / "osie_split.json").write_text(json.dumps(split, indent=1))


def eyecrowd(root: pathlib.Path) -> None:
    """The NUS layout with EyeCrowd's names and a 2 / 1 fixture split."""
    nus_layout(root, EYECROWD_FIXATIONS)
    split = {"about": "fixture split", "train": ["001.jpg", "003.jpg"], "validation": ["002.jpg"]}
    (root / "eyecrowd_split.json").write_text(json.dumps(split, indent=1))


def hamburg(root: pathlib.Path) -> None:
    """data/training/images/train/image-N.png + data/training/fixations/train/fixation-N.png (N = 0, 1, 5),
    and a 2 / 1 fixture split."""
    for number, key in ((0, "a"), (1, "b"), (5, "a")):
        save_image(root / "data" / "training" / "images" / "train" / f"image-{number}.png", ramp())
        save_image(root / "data" / "training" / "fixations" / "train" / f"fixation-{number}.png",
                   continuous_map(FIXATIONS[key]))
    split = {"about": "fixture split", "train": ["image-0", "image-5"], "validation": ["image-1"]}
    (root / "hamburg_cv2_split.json").write_text(json.dumps(split, indent=1))


def rss2015(root: pathlib.Path) -> None:
    """images/normal/{1,2}_c.png (1: 40×30, 2: 30×40 portrait) and data.csv: 8 header names, 9 fields a row,
    centre-relative coordinates with y up; rows of another condition and one point outside image 1."""
    save_image(root / "images" / "normal" / "1_c.png", ramp())
    save_image(root / "images" / "normal" / "2_c.png", np.ascontiguousarray(ramp().transpose(1, 0, 2)))
    rows = ['"fx","fy","duration","fixation","subject","condition","image","format"']
    sizes = {"1": (HEIGHT, WIDTH), "2": (WIDTH, HEIGHT)}
    for image, points in RSS2015_FIXATIONS.items():
        height, width = sizes[image]
        for k, (x, y) in enumerate(points):
            rows.append(f'"{len(rows)}",{x - width / 2:g},{height / 2 - y:g},200,{k + 1},"n{k % 2 + 1}","normal",'
                        f'{image},"landscape"')
    rows.append(f'"{len(rows)}",0,0,200,1,"o1","other",1,"landscape"')  # another condition: ignored
    (root / "data.csv").write_text("\n".join(rows) + "\n")


def photos(root: pathlib.Path) -> None:
    """Unlabelled photos in nested folders: a.jpg, sub/a.png, sub/deeper/b.jpg, a broken bad.jpg, a hidden
    .skip/c.jpg and a text file."""
    save_jpeg(root / "a.jpg")
    save_image(root / "sub" / "a.png", ramp())
    save_jpeg(root / "sub" / "deeper" / "b.jpg")
    (root / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    save_jpeg(root / ".skip" / "c.jpg")
    (root / "notes.txt").write_text("not an image")


def folder(root: pathlib.Path) -> None:
    """images/ + fixations/ (.csv, .json 0-based; .mat 1-based) + maps/; "d" has a map only."""
    save_image(root / "images" / "a.png", ramp())
    for key in ("b", "c"):
        save_jpeg(root / "images" / f"{key}.jpg")
    save_image(root / "images" / "d.png", ramp())
    (root / "fixations").mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"{x:g},{y:g},{k}" for k, (x, y) in enumerate(FIXATIONS["a"]))
    (root / "fixations" / "a.csv").write_text(f"x,y,observer\n{rows}\n")
    (root / "fixations" / "b.json").write_text(json.dumps({"fixations": FIXATIONS["b"].tolist()}))
    scipy.io.savemat(root / "fixations" / "c.mat", {"fixations": FIXATIONS["a"] + 1.0})
    save_image(root / "maps" / "b.png", continuous_map(FIXATIONS["b"]))
    save_image(root / "maps" / "d.png", continuous_map(FIXATIONS["a"]))


def main() -> None:
    writers = {"salicon": lambda r: salicon(r, "2017"), "salicon2015": lambda r: salicon(r, "2015"),
               "salicon_api": salicon_api, "mit": mit, "cat2000": cat2000, "osie": osie, "folder": folder,
               "eyecrowd": eyecrowd, "hamburg_cv2": hamburg, "rss2015": rss2015, "photos": photos}
    for name, write in writers.items():
        shutil.rmtree(HERE / name, ignore_errors=True)
        write(HERE / name)


if __name__ == "__main__":
    main()
