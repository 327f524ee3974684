"""The number's lines of cardgen's photos, cut out upright and enlarged, one photo a row of a
sheet: to judge by eye whether a person reads each number digit for digit, as BENCHMARKS.md's
*Misses looked at digit by digit* did for the reader's misses.

usage: python scripts/number-lines.py DIR OUT.png [SEED ...]

DIR is written by `cardgen --positions` or `ocrgate-ocr-bench --write` (`<seed>-<number>.jpg`
and `.txt` beside it, each line's corners in the order it reads), and the bench lists its misses'
seeds; with no SEED, every photo in DIR. Each line is cut a tenth longer than its digits and more
than twice as high, turned level the way it reads, and scaled to 90 pixels high. Needs Pillow
(`pip install pillow`).
"""

import math
import pathlib
import sys

from PIL import Image, ImageDraw

LINE_HEIGHT = 90
LABEL_WIDTH = 130
GAP = 10


def corners(row):
    """A positions row's four corners, in the order the line reads."""
    values = [float(v) for v in row.split(",")[:8]]
    return [(values[i], values[i + 1]) for i in range(0, 8, 2)]


def cut(photo, quad):
    """The line through `quad`, with a margin, turned level and LINE_HEIGHT pixels high."""
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = quad
    along = ((x2 - x1 + x3 - x4) / 2, (y2 - y1 + y3 - y4) / 2)
    down = ((x4 - x1 + x3 - x2) / 2, (y4 - y1 + y3 - y2) / 2)
    centre = ((x1 + x2 + x3 + x4) / 4, (y1 + y2 + y3 + y4) / 4)
    # From the centre, 0.55 of the line's length each way and 1.1 of its height up and down.
    reach_along, reach_down = 0.55, 1.1

    def at(a, d):
        return (
            centre[0] + a * reach_along * along[0] + d * reach_down * down[0],
            centre[1] + a * reach_along * along[1] + d * reach_down * down[1],
        )

    # PIL's quad: upper left, lower left, lower right, upper right.
    source = [at(-1, -1), at(-1, 1), at(1, 1), at(1, -1)]
    length = 2 * reach_along * math.hypot(*along)
    height = 2 * reach_down * math.hypot(*down)
    width = max(1, round(length / height * LINE_HEIGHT))
    flat = [value for point in source for value in point]
    return photo.transform((width, LINE_HEIGHT), Image.QUAD, flat, Image.BICUBIC)


def row(jpg):
    """One photo's lines side by side, its seed before them."""
    photo = Image.open(jpg).convert("RGB")
    rows = jpg.with_suffix(".txt").read_text().splitlines()
    lines = [cut(photo, corners(line)) for line in rows if line.strip()]
    width = LABEL_WIDTH + sum(line.width + GAP for line in lines)
    out = Image.new("RGB", (width, LINE_HEIGHT + GAP), "white")
    ImageDraw.Draw(out).text((2, LINE_HEIGHT // 2), jpg.name.split("-")[0], fill="black")
    x = LABEL_WIDTH
    for line in lines:
        out.paste(line, (x, GAP // 2))
        x += line.width + GAP
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    folder, out = pathlib.Path(sys.argv[1]), sys.argv[2]
    seeds = sys.argv[3:]
    photos = sorted(folder.glob("*.jpg"))
    if seeds:
        photos = [p for s in seeds for p in photos if p.name.split("-")[0] == s]
        missing = set(seeds) - {p.name.split("-")[0] for p in photos}
        if missing:
            sys.exit(f"no photo of seed {', '.join(sorted(missing))} in {folder}")
    if not photos:
        sys.exit(f"no photo in {folder}")
    rows = [row(p) for p in photos]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.save(out)


if __name__ == "__main__":
    main()
