"""python photo_lines.py SEED OUT.pkl DIR...: the number's lines of cardgen's photos (written with
--positions), cut out as a detector's box would cut them (a margin of each size, sometimes an
edge into the print, the corners a little off), 32 pixels high, with their text."""
import glob, os, pickle, random, sys
import numpy as np
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lines

rng = random.Random(int(sys.argv[1]))
out = []
for folder in sys.argv[3:]:
    for txt in sorted(glob.glob(folder + '/*.txt')):
        photo = Image.open(txt[:-4] + '.jpg').convert('RGB')
        for row in open(txt).read().splitlines():
            fields = row.split(',')
            xy = [float(v) for v in fields[:8]]
            label = ' '.join(fields[8].split())
            tl, tr, br, bl = [np.array(xy[i:i + 2]) for i in range(0, 8, 2)]
            along = (tr - tl + br - bl) / 2
            length = np.linalg.norm(along)
            down = (bl - tl + br - tr) / 2
            h = np.linalg.norm(down)
            if length < 4 or h < 4:
                continue
            u, v = along / length, down / h
            # Two boxes a line, each with margins of its own.
            for _ in range(2):
                def grow():
                    return rng.uniform(-0.15, 0.05) if rng.random() < 0.15 else rng.uniform(0.02, 0.5)
                top, bottom = rng.uniform(0.0, 0.45), rng.uniform(0.0, 0.45)
                left, right = grow(), grow()
                jitter = lambda: (rng.uniform(-0.06, 0.06) * h) * u + (rng.uniform(-0.06, 0.06) * h) * v
                q_tl = tl - left * h * u - top * h * v + jitter()
                q_tr = tr + right * h * u - top * h * v + jitter()
                q_br = br + right * h * u + bottom * h * v + jitter()
                q_bl = bl - left * h * u + bottom * h * v + jitter()
                width = int(round(length + (left + right) * h))
                height = int(round(h * (1 + top + bottom)))
                if width < 8 or height < 4:
                    continue
                data = (*q_tl, *q_bl, *q_br, *q_tr)
                crop = photo.transform((width, height), Image.QUAD, data=data, resample=Image.BILINEAR)
                out.append((lines.at_model_height(crop), label))
rng.shuffle(out)
pickle.dump(out, open(sys.argv[2], 'wb'))
print(len(out), 'lines')
