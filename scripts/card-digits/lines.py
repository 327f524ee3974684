"""Synthetic lines of digits as a detector crops them from a card photo: tight boxes, varied
fonts, inks, backgrounds, patterns, light, blur and compression."""
import glob
import io
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_FILES = sorted(glob.glob(__import__('os').environ.get('FONTS', 'target/fonts') + '/*.[ot]tf'))
FONT_FILES = [f for f in FONT_FILES if 'Symbol' not in f and 'D050000L' not in f and 'Z003' not in f]
_fonts = {}


# The model's classes after the CTC blank (0): digits and the space between groups.
CHARS = '0123456789 '


def collapsed(steps):
    """The text of the model's best class at each step: repeats merged, blanks dropped (greedy
    CTC decoding)."""
    text, prev = [], 0
    for c in steps:
        if c != prev and c != 0:
            text.append(CHARS[c - 1])
        prev = c
    return ''.join(text)


def at_model_height(img):
    """`img` as the model is trained on it: 32 pixels high as its aspect says, 8 to 640 wide, as a
    uint8 array."""
    w, h = img.size
    nw = max(8, min(640, round(w * 32 / h)))
    return np.asarray(img.resize((nw, 32), Image.BILINEAR), dtype=np.uint8)


def font(path, size):
    key = (path, size)
    if key not in _fonts:
        _fonts[key] = ImageFont.truetype(path, size)
    return _fonts[key]


GROUPINGS = [[4, 4, 4, 4], [4, 4, 4, 4, 3], [6, 13], [4, 6, 5], [4, 4, 4, 4, 2], [19], [16],
             [4], [4], [4], [4], [3], [5], [6], [7], [8], [2, 4], [4, 4], [4, 4, 4], [4, 3], [6, 7], [13]]


def text_of(rng):
    groups = rng.choice(GROUPINGS)
    if rng.random() < 0.3:
        cut = rng.randint(1, len(groups))
        groups = groups[:cut] if rng.random() < 0.5 else groups[-cut:]
    parts = [''.join(rng.choice('0123456789') for _ in range(n)) for n in groups]
    return parts


def colour(rng):
    return tuple(rng.randint(0, 255) for _ in range(3))


def contrast_pair(rng):
    bg = np.array(colour(rng), dtype=float)
    # Tone-on-tone sometimes: ink a little off the background.
    if rng.random() < 0.25:
        delta = rng.uniform(30, 70)
    else:
        delta = rng.uniform(70, 230)
    direction = np.array([rng.uniform(-1, 1) for _ in range(3)]) * 0.4 + (1 if rng.random() < 0.5 else -1)
    ink = np.clip(bg + direction * delta, 0, 255)
    if abs(ink.mean() - bg.mean()) < 20:
        ink = np.clip(255 - bg, 0, 255)
    return tuple(int(v) for v in bg), tuple(int(v) for v in ink)


def background(rng, w, h, bg):
    base = np.ones((h, w, 3)) * np.array(bg, dtype=float)
    kind = rng.random()
    if kind < 0.35:  # gradient
        other = np.array(colour(rng), dtype=float)
        t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.6 else np.linspace(0, 1, h)[:, None, None]
        mix = rng.uniform(0.2, 0.7)
        base = base * (1 - mix * t) + other * mix * t
    elif kind < 0.5:  # blobs, photo-like
        for _ in range(rng.randint(2, 6)):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(h, 4 * h)
            yy, xx = np.mgrid[0:h, 0:w]
            m = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
            base = base * (1 - 0.5 * m) + np.array(colour(rng), dtype=float) * 0.5 * m
    return base


def patterns(rng, img, scale):
    d = ImageDraw.Draw(img)
    w, h = img.size
    k = rng.random()
    if k < 0.3:  # guilloche: thin waves through the line
        for _ in range(rng.randint(1, 4)):
            c = colour(rng)
            amp, per, ph, y0 = rng.uniform(0.1, 0.5) * h, rng.uniform(0.5, 3) * h, rng.uniform(0, 6.3), rng.uniform(0.1, 0.9) * h
            pts = [(x, y0 + amp * math.sin(x / per * 6.28 + ph)) for x in range(0, w, 2)]
            d.line(pts, fill=c, width=max(1, int(rng.uniform(0.5, 2) * scale)))
    elif k < 0.5:  # speckle and glitter
        for _ in range(int(w * h / (rng.uniform(30, 200) * scale * scale))):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 2) * scale
            d.ellipse([x - r, y - r, x + r, y + r], fill=colour(rng))


def render(rng):
    parts = text_of(rng)
    label = ' '.join(parts)
    path = rng.choice(FONT_FILES)
    scale = 2
    size = rng.randint(22, 40) * scale
    f = font(path, size)
    spacing = rng.choice([' ', ' ', '  ', '   '])
    shown = spacing.join(parts)
    bbox = f.getbbox(shown)
    tw, th = bbox[2] - bbox[0], bbox[3] - bbox[1]
    # A detector's box: a margin on each side, or an edge cut into the first or last digit.
    def margin():
        return int(rng.uniform(-0.22, 0.1) * th) if rng.random() < 0.3 else int(rng.uniform(0.0, 0.6) * th)
    left, right = margin(), margin()
    top, bottom = (int(rng.uniform(-0.06, 0.7) * th) for _ in range(2))
    padx = max(left, 0) + max(right, 0)
    pady = max(top, 0) + max(bottom, 0)
    w, h = tw + max(left, 0) + max(right, 0) + 2, th + max(top, 0) + max(bottom, 0) + 2
    bg, ink = contrast_pair(rng)
    arr = background(rng, w, h, bg)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        patterns(rng, img, scale)
    d = ImageDraw.Draw(img)
    x, y = max(left, 0) - bbox[0], max(top, 0) - bbox[1]
    emboss = rng.random()
    if emboss < 0.25:  # embossed: light and shadow edges
        off = max(1, int(rng.uniform(0.02, 0.06) * size))
        d.text((x + off, y + off), shown, font=f, fill=tuple(max(0, c - 90) for c in ink))
        d.text((x - off, y - off), shown, font=f, fill=tuple(min(255, c + 90) for c in ink))
    stroke = rng.choice([0, 0, 0, 1, 2]) if emboss >= 0.25 else 0
    d.text((x, y), shown, font=f, fill=ink, stroke_width=stroke, stroke_fill=ink)
    if rng.random() < 0.3:  # a wave over the print
        patterns(rng, img, scale) if rng.random() < 0.5 else None
    # Glare: a bright gradient over part of it.
    arr = np.asarray(img).astype(float)
    if rng.random() < 0.25:
        t = np.linspace(-1, 1, w)[None, :, None]
        c = rng.uniform(-1, 1)
        g = np.exp(-((t - c) ** 2) / rng.uniform(0.05, 0.5)) * rng.uniform(50, 120)
        arr = arr + g
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    # Geometry: a small turn and shear, as a box's crop leaves them.
    if rng.random() < 0.5:
        img = img.rotate(rng.uniform(-3, 3), resample=Image.BILINEAR, expand=False, fillcolor=bg)
    if rng.random() < 0.3:
        sh = rng.uniform(-0.2, 0.2)
        img = img.transform(img.size, Image.AFFINE, (1, sh, -sh * h / 2, 0, 1, 0), resample=Image.BILINEAR, fillcolor=bg)
    # Cut where a margin is negative: the box ends inside the print.
    cl, ct = -min(left, 0), -min(top, 0)
    cr, cb = -min(right, 0), -min(bottom, 0)
    if cl or ct or cr or cb:
        img = img.crop((cl, ct, img.size[0] - cr, img.size[1] - cb))
        w, h = img.size
    # Down to the size a photo gives it.
    target = rng.uniform(12, 50)
    factor = target / h
    small = img.resize((max(8, int(w * factor)), max(8, int(h * factor))), Image.BILINEAR)
    if rng.random() < 0.5:
        small = small.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.3)))
    if rng.random() < 0.2:  # motion blur
        k = rng.randint(2, 4)
        kern = np.zeros((k * 2 + 1, k * 2 + 1))
        kern[k, :] = 1
        small = small.filter(ImageFilter.Kernel((3, 3), [0, 0, 0, 1, 1, 1, 0, 0, 0], 3))
    arr = np.asarray(small).astype(float)
    if rng.random() < 0.6:
        arr = arr + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, rng.uniform(2, 14), arr.shape)
    # Light: dim or colour cast.
    if rng.random() < 0.3:
        arr = arr * np.array([rng.uniform(0.4, 1.1) for _ in range(3)])
    small = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        buf = io.BytesIO()
        small.save(buf, 'JPEG', quality=rng.randint(25, 90))
        small = Image.open(io.BytesIO(buf.getvalue())).convert('RGB')
    return small, label


if __name__ == '__main__':
    rng = random.Random(1)
    ims = [render(rng) for _ in range(16)]
    W = max(i.size[0] for i, _ in ims) * 2
    H = sum(i.size[1] * 2 + 4 for i, _ in ims)
    c = Image.new('RGB', (W, H), 'white')
    y = 0
    for i, l in ims:
        print(l, i.size)
        i = i.resize((i.size[0] * 2, i.size[1] * 2))
        c.paste(i, (0, y))
        y += i.size[1] + 4
    c.save('/tmp/diag/synth.png')
