"""From the network's probability map to the outputs: the map at the original size, optional blur and
centre bias, the display map, the colour overlay, and the PNG / JPEG / .npy encoders.

Map back: the content region of the network frame (all of it for "stretch"; the letterbox placement
otherwise — the padding's share of probability is dropped) is resized bilinearly to the output size and
renormalised to sum to 1. An all-zero or non-finite map becomes uniform.

Blur (`blur`=sigma in pixels at the original size): a Gaussian with zero outside the image (as
fastsal_tf.fixations.density_map). For speed it is applied to the content region at the network
resolution with the sigma scaled per axis (sigma·content_h/H, sigma·content_w/W), before the bilinear
upsampling; the network map is smooth at that scale, so this equals blurring the full-size map up to
interpolation error. The kernel reaches at most across the content (zero lies beyond it, so a longer
kernel changes the map only by a constant factor, which the renormalisation removes): any sigma costs
the same. Sigmas above MAX_BLUR px are refused (SaliencyPredictor, `--blur`) as a sanity bound.

Centre bias (`center_bias`=w in [0, 1]): p ← (1 − w)·p + w·g, where g is a Gaussian centred on the image
with standard deviations `center_bias_sigma`·H and ·W (default 0.25) normalised to sum to 1; the result is
renormalised.

Display map: the probability map scaled so that its maximum is 255 (p · 255 / max p, rounded) — not
min-max normalised, so a flat, uncertain map stays grey instead of being stretched to full contrast.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
from PIL import Image

from fastsal_tf.imaging import Placement, centered_gaussian

# Anchor colours of matplotlib's "inferno" at 0, 0.1, …, 1 (interpolated linearly: an inferno-like map).
_INFERNO = ["000004", "160b39", "420a68", "6a176e", "932667", "bc3754", "dd513a", "f37819", "fca50a", "f6d746",
            "fcffa4"]
COLORMAPS = ("jet", "inferno", "gray")
DEFAULT_COLORMAP = "jet"
DEFAULT_ALPHA = 0.6

# The largest Gaussian blur sigma accepted, in pixels of the original image (a sanity bound: far beyond any
# useful blur, and well inside float range).
MAX_BLUR = 100_000.0


def check_blur(blur) -> float:
    """blur as a float; ValueError unless it is a number in [0, MAX_BLUR]."""
    try:
        value = float(blur)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 <= value <= MAX_BLUR:
        raise ValueError(f"blur sigma must be between 0 and {MAX_BLUR:g} px, got {blur}")
    return value


def probability_to_output(prob_net: np.ndarray, place: Placement, original_hw: tuple[int, int],
                          output_hw: tuple[int, int] | None = None, blur: float = 0.0, center_bias: float = 0.0,
                          center_bias_sigma: float = 0.25) -> np.ndarray:
    """Network-frame map (h, w) → float32 probability map at output_hw (default original_hw) summing to 1.

    original_hw is the image's size the blur sigma refers to; output_hw may be smaller (the size cap).
    """
    output_hw = tuple(output_hw or original_hw)
    array = np.asarray(prob_net, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., 0]
    content_h, content_w = place.content_hw
    content = np.ascontiguousarray(place.crop(array))
    if blur and blur > 0:
        from scipy import ndimage  # imported here: scipy takes a noticeable part of a one-image start-up

        sigma = (blur * content_h / original_hw[0], blur * content_w / original_hw[1])
        radius = [min(int(np.ceil(4.0 * s)), n) for s, n in zip(sigma, content.shape)]
        content = ndimage.gaussian_filter(content, sigma, mode="constant", radius=radius)
    if content.shape != output_hw:
        content = np.asarray(Image.fromarray(content).resize((output_hw[1], output_hw[0]),
                                                             Image.Resampling.BILINEAR))  # read-only float32
    result = normalise(np.maximum(content, np.float32(0)))  # the clamp makes the one new, writable array
    if center_bias and center_bias > 0:
        result = normalise(blend_center_bias(result, center_bias, center_bias_sigma))
    return result


def normalise(array: np.ndarray) -> np.ndarray:
    """array / sum (sum taken in float64), in place where possible; uniform when the sum is not positive."""
    total = float(array.sum(dtype=np.float64))
    if not np.isfinite(total) or total <= 0:
        array[...] = 1.0 / array.size
        return array
    array *= array.dtype.type(1.0 / total)
    return array


def blend_center_bias(prob: np.ndarray, weight: float, sigma: float = 0.25) -> np.ndarray:
    """(1 − weight)·prob + weight·centre Gaussian (both summing to 1)."""
    if not 0 <= weight <= 1:
        raise ValueError(f"center-bias weight must be in [0, 1], got {weight}")
    gauss = centered_gaussian(prob.shape, sigma, prob.dtype)
    gauss *= prob.dtype.type(weight)
    prob *= prob.dtype.type(1 - weight)
    prob += gauss
    return prob


def display_map(prob: np.ndarray) -> np.ndarray:
    """Probability map → uint8 display map, scaled so that its maximum is 255 (not min-max)."""
    prob = np.asarray(prob)
    peak = float(prob.max()) if prob.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros(prob.shape, np.uint8)
    scaled = np.multiply(prob, np.float32(255.0 / peak), dtype=np.float32)
    scaled += np.float32(0.5)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def colormap_lut(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """(256, 3) uint8 lookup table: 'jet' (blue → red), 'inferno' (black → yellow, approximated) or 'gray'."""
    t = np.linspace(0.0, 1.0, 256)
    if name == "jet":
        rgb = np.stack([np.clip(1.5 - np.abs(4 * t - c), 0, 1) for c in (3, 2, 1)], axis=1)
    elif name == "inferno":
        anchors = np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for h in _INFERNO], np.float64) / 255
        grid = np.linspace(0, 1, len(anchors))
        rgb = np.stack([np.interp(t, grid, anchors[:, c]) for c in range(3)], axis=1)
    elif name == "gray":
        rgb = np.repeat(t[:, None], 3, axis=1)
    else:
        raise ValueError(f"colormap must be one of {COLORMAPS}, got {name!r}")
    return np.round(rgb * 255).astype(np.uint8)


def overlay(image: Image.Image | np.ndarray, display: np.ndarray, colormap: str = DEFAULT_COLORMAP,
            alpha: float = DEFAULT_ALPHA) -> Image.Image:
    """Colour map of the uint8 display map blended over the RGB image (same size): per pixel, the colour's
    opacity is alpha·sqrt(v/255), so unsalient areas show the image and the peak is alpha opaque. ValueError
    unless 0 <= alpha <= 1.

    One palette lookup gives each pixel its colour and its opacity (an RGBA palette), and PIL pastes that
    over a copy of the image with its own alpha as the mask: out = (img·(255 − a) + colour·a) / 255, rounded."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"overlay alpha must be in [0, 1], got {alpha}")
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    display = np.ascontiguousarray(display, dtype=np.uint8)
    if display.shape != (image.height, image.width):
        raise ValueError(f"overlay: map {display.shape[::-1]} and image {image.size} differ in size")
    heat = Image.frombuffer("P", image.size, display, "raw", "P", 0, 1)
    heat.putpalette(_overlay_palette(colormap, float(alpha)), "RGBA")
    heat = heat.convert("RGBA")
    blended = image.copy() if image.mode == "RGB" else image.convert("RGB")
    blended.paste(heat, (0, 0), heat)
    return blended


@functools.lru_cache(maxsize=16)
def _overlay_palette(colormap: str, alpha: float) -> bytes:
    """(256 × RGBA) palette bytes: the colour map's colour of each display level and its opacity
    round(255·alpha·sqrt(v/255))."""
    opacity = np.round(255 * alpha * np.sqrt(np.arange(256) / 255)).astype(np.uint8)
    return np.concatenate([colormap_lut(colormap), opacity[:, None]], axis=1).tobytes()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(array: np.ndarray, compress_level: int = 1, text: tuple[str, str] | None = None) -> bytes:
    """8-bit grayscale (H, W), RGB (H, W, 3) or RGBA (H, W, 4) array → PNG bytes. Fast: every row uses the
    "Up" filter (computed in numpy) and zlib's run-length strategy for grayscale maps (smooth: long runs),
    Huffman-only for colour images (photos: few runs) — 2–4× faster than PIL's adaptive filtering at
    level 1, and no larger on saliency maps and overlays. text: a (keyword, text) tEXt chunk to add."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in (1, 3, 4) or height < 1 or width < 1:
        raise ValueError(f"encode_png needs an (H, W), (H, W, 3) or (H, W, 4) array, got {array.shape}")
    rows = array.reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), np.uint8)
    filtered[:, 0] = 2  # Up: each byte minus the byte above (the first row has zeros above)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    strategy = zlib.Z_RLE if channels == 1 else zlib.Z_HUFFMAN_ONLY
    compressor = zlib.compressobj(int(compress_level), zlib.DEFLATED, 15, 9, strategy)
    data = compressor.compress(filtered.data) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2, 4: 6}[channels], 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header)
    if text is not None:
        chunks += _png_chunk(b"tEXt", "\0".join(text).encode("latin-1"))
    return PNG_SIGNATURE + chunks + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def png_text(path) -> dict[str, str]:
    """The tEXt chunks ahead of the image data of a PNG file; {} for any other or an unreadable file."""
    found = {}
    try:
        with open(path, "rb") as stream:
            if stream.read(8) != PNG_SIGNATURE:
                return found
            while len(head := stream.read(8)) == 8:
                length, tag = struct.unpack(">I4s", head)
                if tag == b"IDAT" or length > 1 << 16:
                    break
                data = stream.read(length + 4)[:length]  # the chunk and its CRC
                if tag == b"tEXt" and b"\0" in data:
                    key, _, value = data.partition(b"\0")
                    found[key.decode("latin-1")] = value.decode("latin-1")
    except OSError:
        pass
    return found


DEFAULT_JPEG_QUALITY = 90


def encode_jpeg(image: Image.Image | np.ndarray, quality: int = DEFAULT_JPEG_QUALITY,
                comment: str | None = None) -> bytes:
    """RGB (or grayscale) image → baseline JPEG bytes (4:2:0 chroma, libjpeg quality `quality`), with `comment`
    as a COM segment ahead of the image data (read back with `jpeg_comment`)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    buffer = io.BytesIO()
    extra = {"comment": comment.encode("latin-1")} if comment is not None else {}
    image.save(buffer, "JPEG", quality=int(quality), **extra)
    return buffer.getvalue()


_JPEG_SOI, _JPEG_COM, _JPEG_SOS = b"\xff\xd8", 0xFE, 0xDA


def jpeg_comment(path) -> str | None:
    """The first COM segment ahead of the image data of a JPEG file (latin-1); None for any other or an
    unreadable file, or a JPEG without one. Reads the header segments only."""
    try:
        with open(path, "rb") as stream:
            if stream.read(2) != _JPEG_SOI:
                return None
            while len(head := stream.read(4)) == 4 and head[0] == 0xFF and head[1] != _JPEG_SOS:
                length = struct.unpack(">H", head[2:])[0] - 2
                if length < 0:
                    return None
                if head[1] == _JPEG_COM:
                    return stream.read(length).decode("latin-1")
                stream.seek(length, io.SEEK_CUR)
    except OSError:
        pass
    return None


def encode_npy(array: np.ndarray) -> bytes:
    """The .npy file of an array, as bytes."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
