"""Writing crops of an image file at its original quality, all or nothing.

The crop is cut from the full-size, upright (EXIF orientation applied) image:
- JPEG sources give JPEG crops re-encoded with the source's own quantisation tables and chroma subsampling
  (the quality it was saved at), with its ICC profile and its EXIF (orientation reset to upright).
- Other formats give lossless PNG crops (alpha kept; modes PNG cannot hold become RGB).
- Every crop carries CROP_MARK (the JPEG comment, replacing the source's comment, or the PNG "Software"
  text), so that `fastsal crop DIR --out DIR` run again does not take its own crops as inputs
  (written_by_crop).
Every crop is encoded in memory first (encode_crops); the caller writes them all or none
(fastsal_tf.common.files.write_all_atomic): a failed image leaves nothing.
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin

from fastsal_tf.predict import postprocess
from fastsal_tf.predict.errors import ImageError
from fastsal_tf.predict.images import DEFAULT_MAX_PIXELS

PNG_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")
CROP_MARK = "fastsal crop"


def written_by_crop(path: str | os.PathLike) -> bool:
    """Whether path is a crop `fastsal crop --out` wrote: a <stem>_crop_<W>x<H>.jpg / .png carrying
    CROP_MARK. False for any other or an unreadable file."""
    name = os.path.basename(path).lower()
    if "_crop_" not in name:
        return False
    if name.endswith(".jpg"):
        return postprocess.jpeg_comment(path) == CROP_MARK
    return name.endswith(".png") and postprocess.png_text(path).get("Software") == CROP_MARK


def crop_suffix(source: str | os.PathLike) -> str:
    """".jpg" for a JPEG file, else ".png" (the format its crops are written in)."""
    with open(source, "rb") as file:
        return ".jpg" if file.read(3) == b"\xff\xd8\xff" else ".png"


def encode_crops(source: str | os.PathLike, boxes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[bytes]:
    """The encoded crops (see the module docstring) of the image file `source`, one per box (x0, y0, x1, y1)
    in pixels of the upright image. Raises ImageError naming the file when it cannot be decoded in full."""
    name = os.fspath(source)
    try:
        with Image.open(name) as image:
            if max_pixels and image.width * image.height > max_pixels:
                raise ImageError(name, f"too large to cut crops from at full size ({image.width}x{image.height} "
                                       f"is above the limit of {max_pixels:,} pixels)")
            jpeg = image.format == "JPEG"
            upright = ImageOps.exif_transpose(image)
            if jpeg:
                options = {"qtables": image.quantization, "icc_profile": image.info.get("icc_profile"),
                           "comment": CROP_MARK.encode()}
                sampling = JpegImagePlugin.get_sampling(image)
                if sampling >= 0:
                    options["subsampling"] = sampling
                exif = upright.getexif()
                if len(exif):
                    options["exif"] = exif
            else:
                options = {"pnginfo": PngImagePlugin.PngInfo()}
                options["pnginfo"].add_text("Software", CROP_MARK)
                if upright.mode not in PNG_MODES:
                    upright = upright.convert("RGBA" if "A" in upright.mode else "RGB")
            encoded = []
            for box in boxes:
                buffer = io.BytesIO()
                upright.crop(tuple(int(v) for v in box)).save(buffer, "JPEG" if jpeg else "PNG", **options)
                encoded.append(buffer.getvalue())
            return encoded
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise ImageError(name, f"cannot cut crops from this image ({error})") from None
