"""Draws the README's crop example: `fastsal crop` boxes and the `fastsal center` point over a photo.

Usage: python docs/example/draw_crops.py [IMAGE] [--model default] [--out docs/example/1010_crops.jpg]
Default IMAGE: OSIE image 1010.jpg (MIT license) from ../shared/data/osie/data/stimuli/.
"""

from __future__ import annotations

import argparse
import pathlib

from PIL import Image, ImageDraw, ImageFont

ROOT = pathlib.Path(__file__).resolve().parents[2]
ASPECTS = ("1:1", "16:9", "9:16")
COLOURS = ((0, 229, 255), (255, 234, 0), (255, 64, 129))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", default=str(ROOT.parent / "shared/data/osie/data/stimuli/1010.jpg"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", default=str(ROOT / "docs/example/1010_crops.jpg"))
    args = parser.parse_args(argv)

    import fastsal_tf

    model = fastsal_tf.load_model(args.model)
    boxes = model.predict_crops(args.image, ASPECTS)
    x, y = model.predict_center(args.image)
    with Image.open(args.image) as source:
        picture = source.convert("RGB")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(14, picture.height // 30))

    def label(position, text, colour):
        left, top, right, bottom = draw.textbbox(position, text, font=font)
        draw.rectangle((left - 3, top - 2, right + 3, bottom + 2), fill=(0, 0, 0))
        draw.text(position, text, fill=colour, font=font)

    for index, (aspect, box, colour) in enumerate(zip(ASPECTS, boxes, COLOURS)):
        x0, y0, x1, y1 = box
        draw.rectangle((x0 + 3 * index, y0 + 3 * index, x1 - 1 - 3 * index, y1 - 1 - 3 * index), outline=colour,
                       width=3)
    for index, (aspect, box, colour) in enumerate(zip(ASPECTS, boxes, COLOURS)):
        label((boxes[index][0] + 10, picture.height - (3 - index) * font.size * 1.6), f"{aspect} {list(box)}", colour)
    draw.ellipse((x - 10, y - 10, x + 10, y + 10), outline=(255, 255, 255), width=3)
    draw.line((x - 18, y, x + 18, y), fill=(255, 255, 255), width=2)
    draw.line((x, y - 18, x, y + 18), fill=(255, 255, 255), width=2)
    label((x + 16, y + 14), f"center ({x:.0f}, {y:.0f})", (255, 255, 255))
    picture.save(args.out, quality=88)
    print(f"{args.out}: crops {dict(zip(ASPECTS, boxes))}, center ({x:.1f}, {y:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
