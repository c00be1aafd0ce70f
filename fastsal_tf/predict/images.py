"""Reading any image for prediction, in bounded memory, and making the network input.

- EXIF orientation is applied (`ImageOps.exif_transpose`): maps and overlays have the displayed size.
- Every mode becomes 8-bit RGB: grayscale, palette, CMYK, YCbCr; 16-bit and 32-bit integer images are
  scaled to 8 bits (65535 → 255); float images and arrays whose values all lie in [0, 1] are 0–1 images
  (scaled by 255), other floats are 0–255 (`float_to_255`); a float image holding NaN or infinite values
  is refused (ImageError naming it: no colour can be guessed for them); transparent images (RGBA, LA,
  palette or colour-key transparency) are composited over white.
- Bounded decode: JPEGs are decoded at a reduced scale (libjpeg DCT scaling, 1/2, 1/4 or 1/8, PIL
  `draft()`) to the smallest size that is still at least the size needed — the network input, or the
  output size when an overlay is drawn — so a 20000×20000 JPEG costs a 2500×2500 decode. Other formats can
  only be decoded whole: any image whose decode would still exceed `max_pixels` (default 2**27 ≈ 134 Mpx,
  ≈ 400 MB of RGB) is refused with an ImageError, as are non-JPEG images above PIL's own
  `Image.MAX_IMAGE_PIXELS` bomb guard (×2).
- Outputs are at the original (displayed) size, except that an image whose longest side exceeds `max_side`
  (default 8192 px; None for no cap) gets its outputs downscaled to fit, with a note (a warning).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import time

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from fastsal_tf.imaging import Placement, check_policy, placement, resize_pil
from fastsal_tf.predict.errors import ImageError

DEFAULT_MAX_SIDE = 8192
DEFAULT_MAX_PIXELS = 2 ** 27
LETTERBOX_PAD = (0, 0, 0)  # black bars, as the data pipeline's letterbox (zeros in 0–255 RGB)
BACKGROUND = (255, 255, 255)  # transparent pixels are composited over white
_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_JPEG_MAGIC = b"\xff\xd8\xff"
_16_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


@dataclasses.dataclass
class PreparedImage:
    """One decoded image, ready for the network, and what is needed to map its saliency back."""

    name: str
    net_input: np.ndarray  # (h, w, 3) uint8 RGB, the network frame
    original_hw: tuple[int, int]  # (H, W) after EXIF orientation
    output_hw: tuple[int, int]  # original_hw, or downscaled to fit max_side
    placement: Placement
    display: Image.Image | None = None  # RGB at output_hw, for overlays (only when asked for)
    notes: list[str] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)


def output_size(original_hw: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """original_hw, or scaled down (aspect kept) so that its longest side is max_side."""
    height, width = original_hw
    if not max_side or max(height, width) <= max_side:
        return int(height), int(width)
    scale = max_side / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def float_to_255(values: np.ndarray, name: str = "<image>") -> np.ndarray:
    """Float pixel values → float32 on the 0–255 scale: an image whose values all lie in [0, 1] is taken as a
    0–1 image and scaled by 255, any other as 0–255 already. ImageError naming the image (`name`) when a
    value is NaN or infinite."""
    values = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        bad = values.size - int(np.count_nonzero(finite))
        raise ImageError(name, f"{bad} of {values.size} float pixel values are NaN or infinite (no "
                               f"brightness can be read from them)")
    return values * np.float32(255) if values.size and values.min() >= 0 and values.max() <= 1.0 else values


def _from_array(array: np.ndarray, name: str = "<array>") -> Image.Image:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, uint8 / uint16 / integer / float → PIL image. Floats
    follow float_to_255: values all in [0, 1] are a 0–1 image (scaled by 255), others are 0–255; NaN or
    infinite values raise ImageError naming the array (`name`)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise ValueError(f"an image array must be (H, W), (H, W, 3) RGB or (H, W, 4) RGBA, got shape {array.shape}")
    if array.dtype == np.uint16:
        array = ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise ValueError(f"unsupported image array dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating):
            array = float_to_255(array, name)
        array = np.clip(array.astype(np.float32), 0, 255).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))  # mode L, RGB or RGBA from the shape


def to_rgb(image: Image.Image, name: str = "<image>") -> Image.Image:
    """Any PIL mode → 8-bit RGB (see the module docstring); ImageError naming the image (`name`) for a float
    image with NaN or infinite values."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _16_BIT_MODES or mode in ("I", "F"):
        values = np.asarray(image)
        if mode == "F":
            values = float_to_255(values, name)
        elif mode == "I" and values.size and values.max() <= 255:
            pass  # 8-bit data stored as 32-bit integers
        else:
            values = np.clip(values.astype(np.float32), 0, 65535) / 257.0
        gray = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8))  # mode L
        return gray.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def open_image_file(path: str) -> Image.Image:
    """Opens an image file lazily (header only). JPEGs are opened without PIL's decompression-bomb check
    because they are decoded at reduced scale and checked against max_pixels afterwards."""
    if os.path.exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
        raise ImageError(path, "not a regular file (a pipe, socket or device)")  # reading it could block forever
    try:
        with open(path, "rb") as file:
            magic = file.read(len(_JPEG_MAGIC))
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageError(path, "is a folder, not an image file") from None
    except OSError as error:
        raise ImageError(path, f"cannot read the file ({error.strerror or error})") from None
    try:
        if magic == _JPEG_MAGIC:
            return JpegImagePlugin.JpegImageFile(path)
        return Image.open(path)
    except UnidentifiedImageError:
        raise ImageError(path, "not an image, or an unsupported image format") from None
    except Image.DecompressionBombError as error:
        raise ImageError(path, f"too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
        raise ImageError(path, f"unreadable or corrupt image ({error})") from None


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(_ORIENTATION, 1))
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return 1
    return value if 1 <= value <= 8 else 1


def decode(source, needed_hw=None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
           name: str | None = None) -> tuple[Image.Image, tuple[int, int], int]:
    """Decodes `source` (a path, a PIL image or an array) to an upright 8-bit RGB PIL image.

    needed_hw: a function original_hw → (h, w), the smallest size the caller needs; JPEG files are decoded at
    the coarsest DCT scale that is still at least that size (None: full size). Returns (image, original_hw,
    frames) where original_hw is the full displayed (EXIF-oriented) size (the image itself may be smaller)
    and frames the number of frames of the source (an animated GIF, a multi-page TIFF: the first is used).
    Raises ImageError naming the image when it cannot be used.
    """
    if isinstance(source, np.ndarray):
        name = name or "<array>"
        image = _from_array(source, name)
        return to_rgb(image, name), (image.height, image.width), 1
    if isinstance(source, Image.Image):
        name = name or getattr(source, "filename", "") or "<image>"
        try:
            source.load()  # a lazily opened file decodes here: truncation and corruption show now
            image = ImageOps.exif_transpose(source) if _orientation(source) != 1 else source
            return to_rgb(image, name), (image.height, image.width), getattr(source, "n_frames", 1)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageError(name, f"unreadable or corrupt image ({error})") from None
    path = os.fspath(source)
    name = name or path
    image = open_image_file(path)
    try:
        rgb, original_hw = _decode_opened(image, needed_hw, max_pixels, name)
    except ImageError:
        image.close()
        raise
    except Image.DecompressionBombError as error:
        image.close()
        raise ImageError(name, f"too large to decode safely ({error})") from None
    except MemoryError:
        image.close()
        raise ImageError(name, "out of memory while decoding") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error) as error:
        image.close()
        text = str(error) or type(error).__name__
        reason = "truncated image" if "truncated" in text else "unreadable or corrupt image"
        raise ImageError(name, f"{reason} ({text})") from None
    frames = getattr(image, "n_frames", 1)
    if rgb is not image:
        image.close()
    elif frames > 1:  # multi-frame files keep their file open after load()
        rgb = image.copy()
        image.close()
    return rgb, original_hw, frames


def _decode_opened(image, needed_hw, max_pixels, name):
    stored_w, stored_h = image.size
    jpeg = image.format == "JPEG"
    orientation = _orientation(image) if jpeg else None  # JPEG: EXIF is in the header; PNG may need a load
    if jpeg and needed_hw is not None:
        swap = orientation in _TRANSPOSING
        need_h, need_w = needed_hw((stored_w, stored_h) if swap else (stored_h, stored_w))
        request = (need_h, need_w) if swap else (need_w, need_h)
        image.draft(None, (max(1, int(request[0])), max(1, int(request[1]))))
    if max_pixels and image.width * image.height > max_pixels:
        hint = "" if jpeg else " (only JPEGs can be decoded at a reduced size)"
        raise ImageError(name, f"too large to decode in bounded memory: {stored_w}x{stored_h} needs a "
                               f"{image.width}x{image.height} decode, above the limit of {max_pixels:,} "
                               f"pixels{hint}")
    image.load()
    if orientation is None:
        orientation = _orientation(image)
    swap = orientation in _TRANSPOSING
    original_hw = (stored_w, stored_h) if swap else (stored_h, stored_w)
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    return to_rgb(upright, name), original_hw


def prepare_image(source, net_hw: tuple[int, int], policy: str = "stretch", *, display: bool = False,
                  max_side: int | None = DEFAULT_MAX_SIDE, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  name: str | None = None, resample: str = "bilinear") -> PreparedImage:
    """Decodes `source` and makes the (h, w, 3) uint8 network input under the resize policy ("stretch":
    resize to the frame; "letterbox": keep the aspect ratio, centre, pad with black). display=True also
    keeps the upright RGB image at the output size (for overlays). resample: "bilinear" (antialiased, as
    our training pipeline) or "lanczos" (the authors' preprocessing, exact: the whole image, no reduced
    decode). Raises ImageError."""
    check_policy(policy)
    net_hw = (int(net_hw[0]), int(net_hw[1]))
    name = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else
                    getattr(source, "filename", "") or "<image>")

    def needed(original_hw):
        if resample == "lanczos":
            return tuple(original_hw)
        if display:
            return output_size(original_hw, max_side)
        return placement(tuple(original_hw), net_hw, policy).content_hw

    start = time.perf_counter()
    rgb, original_hw, frames = decode(source, needed, max_pixels, name)
    decoded = time.perf_counter()
    out_hw = output_size(original_hw, max_side)
    notes = [f"{frames} frames: the first is used"] if frames > 1 else []
    if out_hw != tuple(original_hw):
        notes.append(f"{original_hw[1]}x{original_hw[0]} is above the {max_side} px size cap: outputs written "
                     f"downscaled to {out_hw[1]}x{out_hw[0]}")
    place = placement(tuple(original_hw), net_hw, policy)
    # Antialiased when shrinking; a large shrink first box-reduces by an integer factor while the image
    # stays at least reducing_gap times the target (fast; what JPEG DCT scaling does in the decoder).
    shown = resize_pil(rgb, (out_hw[1], out_hw[0]), reducing_gap=2.0) if display else None
    source_image = shown if shown is not None and shown.width * shown.height < rgb.width * rgb.height else rgb
    (content_h, content_w), (offset_y, offset_x) = place.content_hw, place.offset_yx
    if resample == "lanczos":
        content = resize_pil(rgb, (content_w, content_h), "lanczos")
    else:
        content = resize_pil(source_image, (content_w, content_h), reducing_gap=1.0)
    if (content_h, content_w) != net_hw:
        frame = Image.new("RGB", (net_hw[1], net_hw[0]), LETTERBOX_PAD)
        frame.paste(content, (offset_x, offset_y))
        content = frame
    net_input = np.asarray(content, dtype=np.uint8)
    resized = time.perf_counter()
    return PreparedImage(name, net_input, tuple(original_hw), out_hw, place, shown, notes,
                         {"decode": decoded - start, "resize": resized - decoded})
