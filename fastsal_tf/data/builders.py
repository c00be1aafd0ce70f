"""tensorflow-datasets builders for SALICON, MIT1003, CAT2000, OSIE, EyeCrowd, hamburg_cv2 and rss2015: thin
wrappers over the readers.

The data cannot be downloaded automatically: put the official files in a manual dir (layouts in each
builder's MANUAL_DOWNLOAD_INSTRUCTIONS and in the reader modules), then build and load:
    from fastsal_tf.data.builders import Osie
    builder = Osie(data_dir="~/tensorflow_datasets")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir="/path/to/osie"))
    validation = builder.as_dataset(split="validation")
(`tfds build --imports fastsal_tf.data.builders osie --manual_dir ...` works too where the tfds command-line
extras are installed.) Salicon takes config "2017" (default) or "2015".

Each example:
  image          uint8 (H, W, 3)  the stored image (file bytes kept as they are; no EXIF rotation)
  fixations      float32 (N, 2)   (x, y), 0-based pixel coordinates, pixel centres at integers; N = 0 for
                                  hamburg_cv2, which has maps only
  fixation_map   uint8 (H, W, 1)  1 at fixated pixels (points rounded to the nearest pixel), else 0
  density_map    uint8 (H, W, 1)  the dataset's continuous fixation map scaled to max 255 (SALICON maps,
                                  MIT1003 _fixMap, CAT2000 FIXATIONMAPS, hamburg_cv2 maps); OSIE, EyeCrowd
                                  and rss2015 have none, so theirs is the fixations blurred by a Gaussian of
                                  sigma 24 px (OSIE, about 1 degree) or 26 px (EyeCrowd's authors; rss2015)
  original_size  int32 (2,)       stored (height, width)
  id             text             example id (file stem; "<Category>/<name>" for CAT2000)
Splits are deterministic: the official train / validation folders (SALICON), one "train" split of every
labelled image (MIT1003, CAT2000), "full" (rss2015; tfds reserves the name "all" that the readers use), the
fixed splits shipped in fastsal_tf/data: OSIE 600/100 train / validation; EyeCrowd "full" plus 400/100;
hamburg_cv2 2,801/200.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from fastsal_tf.data.example import SaliencyExample
from fastsal_tf.data.images import read_gray
from fastsal_tf.data.readers import (read_cat2000, read_eyecrowd, read_hamburg, read_mit1003, read_osie, read_rss2015,
                                     read_salicon)
from fastsal_tf.data.readers.eyecrowd import DENSITY_SIGMA_PX as EYECROWD_SIGMA
from fastsal_tf.data.readers.osie import PIXELS_PER_DEGREE
from fastsal_tf.data.readers.rss2015 import DENSITY_SIGMA_PX as RSS2015_SIGMA
from fastsal_tf.fixations import density_map, rasterize

_CITATION_FASTSAL = ("Hu & McGuinness, FastSal: a Computationally Efficient Network for Visual Saliency "
                     "Prediction, ICPR 2020")


class _SaliencyBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Common features and example encoding; subclasses say how to read each split."""

    VERSION = tfds.core.Version("1.0.0")
    SPLITS: tuple[str, ...] = ()
    DENSITY_SIGMA_PX: float | None = None  # blur for datasets without continuous maps
    HOMEPAGE = ""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "fixations": tfds.features.Tensor(shape=(None, 2), dtype=np.float32),
                "fixation_map": tfds.features.Image(shape=(None, None, 1)),
                "density_map": tfds.features.Image(shape=(None, None, 1)),
                "original_size": tfds.features.Tensor(shape=(2,), dtype=np.int32),
                "id": tfds.features.Text(),
            }),
            homepage=self.HOMEPAGE,
            citation=_CITATION_FASTSAL,
        )

    def _read(self, manual_dir: pathlib.Path, split: str):
        raise NotImplementedError

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        return {split: self._generate_examples(manual_dir, split) for split in self.SPLITS}

    def _density(self, example: SaliencyExample, fixation_map: np.ndarray) -> np.ndarray:
        if example.map_path is not None:
            return read_gray(example.map_path)
        density = density_map(fixation_map, self.DENSITY_SIGMA_PX)
        return np.round(density / density.max() * 255).astype(np.uint8)

    def _generate_examples(self, manual_dir: pathlib.Path, split: str):
        for example in self._read(manual_dir, split):
            hw = (example.height, example.width)
            points = np.zeros((0, 2)) if example.fixations is None else example.fixations
            fixation_map = rasterize(points, hw)
            yield example.id, {
                "image": example.image_path,
                "fixations": points.astype(np.float32),
                "fixation_map": fixation_map.astype(np.uint8)[..., None],
                "density_map": self._density(example, fixation_map)[..., None],
                "original_size": np.array(hw, dtype=np.int32),
                "id": example.id,
            }


@dataclasses.dataclass
class SaliconConfig(tfds.core.BuilderConfig):
    """release: "2017" (LSUN 2017) or "2015" (LSUN 2016); their ground truths differ."""

    release: str = "2017"


class Salicon(_SaliencyBuilder):
    """SALICON (mouse-contingent fixations on COCO images), train and validation splits."""

    name = "salicon"
    SPLITS = ("train", "validation")
    HOMEPAGE = "http://salicon.net"
    BUILDER_CONFIGS = [SaliconConfig(name="2017", release="2017"), SaliconConfig(name="2015", release="2015")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download SALICON from http://salicon.net (the LSUN 2017 release for config 2017, the LSUN 2016 release for
    config 2015) and unpack into manual_dir so that it holds images/{train,val}/*.jpg,
    maps/{train,val}/*.png and fixations/{train,val}/*.mat.
    """

    def _read(self, manual_dir, split):
        return read_salicon(manual_dir, split, release=self.builder_config.release)


class Mit1003(_SaliencyBuilder):
    """MIT1003 (Judd et al. 2009): one train split with all 1003 images."""

    name = "mit1003"
    SPLITS = ("train",)
    HOMEPAGE = "https://people.csail.mit.edu/tjudd/WherePeopleLook/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download ALLSTIMULI.zip and ALLFIXATIONMAPS.zip from the MIT1003 page and unpack both into manual_dir,
    so that it holds ALLSTIMULI/*.jpeg and ALLFIXATIONMAPS/*_fixMap.jpg, *_fixPts.jpg.
    """

    def _read(self, manual_dir, split):
        return read_mit1003(manual_dir, split)


class Cat2000(_SaliencyBuilder):
    """CAT2000 (Borji & Itti 2015): the 2000 labelled training images, ids "<Category>/<name>"."""

    name = "cat2000"
    SPLITS = ("train",)
    HOMEPAGE = "http://saliency.mit.edu/results_cat2000.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download trainSet.zip of CAT2000 and unpack it into manual_dir, so that it holds
    trainSet/Stimuli/<Category>/*.jpg, trainSet/FIXATIONMAPS/<Category>/*.jpg and
    trainSet/FIXATIONLOCS/<Category>/*.mat.
    """

    def _read(self, manual_dir, split):
        return read_cat2000(manual_dir, split)


@dataclasses.dataclass
class SplitFileConfig(tfds.core.BuilderConfig):
    """split_file: a split JSON; None = the fixed split shipped in fastsal_tf/data."""

    split_file: str | None = None



class Osie(_SaliencyBuilder):
    """OSIE (Xu et al. 2014): 700 images, eye fixations of 15 observers; the fixed 600/100 split."""

    name = "osie"
    SPLITS = ("train", "validation")
    DENSITY_SIGMA_PX = PIXELS_PER_DEGREE
    HOMEPAGE = "https://github.com/NUS-VIP/predicting-human-gaze-beyond-pixels"
    BUILDER_CONFIGS = [SplitFileConfig(name="default")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Clone or download the OSIE repository (predicting-human-gaze-beyond-pixels) and use its top folder as
    manual_dir, so that it holds data/stimuli/*.jpg and data/eye/fixations.mat.
    """

    def _read(self, manual_dir, split):
        return read_osie(manual_dir, split, split_file=self.builder_config.split_file)


class EyeCrowd(_SaliencyBuilder):
    """EyeCrowd (Jiang, Xu & Zhao 2014): 500 crowd scenes, 16 observers; "all" (the cross-dataset validation
    set) and the fixed 400/100 train / validation split."""

    name = "eyecrowd"
    SPLITS = ("full", "train", "validation")  # tfds reserves "all": "full" is the reader's "all"
    DENSITY_SIGMA_PX = EYECROWD_SIGMA
    HOMEPAGE = "https://github.com/NUS-VIP/saliency-in-crowd"
    BUILDER_CONFIGS = [SplitFileConfig(name="default")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Clone NUS-VIP/saliency-in-crowd (or run ../shared/tools/extra_data.py) and use its top folder as manual_dir,
    so that it holds data/stimuli/*.jpg and data/eye/fixations.mat.
    """

    def _read(self, manual_dir, split):
        return read_eyecrowd(manual_dir, "all" if split == "full" else split, split_file=self.builder_config.split_file)


class HamburgCv2(_SaliencyBuilder):
    """hamburg_cv2: 3,001 224×224 photographs with fixation density maps (no points); the fixed 2,801/200
    train / validation split."""

    name = "hamburg_cv2"
    SPLITS = ("train", "validation")
    HOMEPAGE = "https://github.com/mpn1008/eye-fixation-prediction"
    BUILDER_CONFIGS = [SplitFileConfig(name="default")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Run ../shared/tools/extra_data.py (or clone mpn1008/eye-fixation-prediction without the excluded images)
    and use hamburg_cv2/ as manual_dir, so that it holds data/training/images/train/image-N.png and
    data/training/fixations/train/fixation-N.png.
    """

    def _read(self, manual_dir, split):
        return read_hamburg(manual_dir, split, split_file=self.builder_config.split_file)


class Rss2015(_SaliencyBuilder):
    """rss2015 (RSS 2015 data challenge): 60 photographs, 10 observers, the "normal" condition; one split."""

    name = "rss2015"
    SPLITS = ("full",)  # the reader's "all"
    DENSITY_SIGMA_PX = RSS2015_SIGMA
    HOMEPAGE = "https://github.com/cachelack/eyeFixationData"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Clone cachelack/eyeFixationData (or run ../shared/tools/extra_data.py) and use its top folder as manual_dir,
    so that it holds images/normal/<k>_c.png and data.csv.
    """

    def _read(self, manual_dir, split):
        return read_rss2015(manual_dir, "all")
