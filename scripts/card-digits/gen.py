"""python gen.py SEED COUNT OUT.pkl: COUNT synthetic lines from lines.py, 32 pixels high."""
import sys, random, pickle, numpy as np
from PIL import Image
import lines
seed, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
data = []
for i in range(n):
    img, label = lines.render(rng)
    w, h = img.size
    nw = max(8, min(640, round(w * 32 / h)))
    arr = np.asarray(img.resize((nw, 32), Image.BILINEAR), dtype=np.uint8)
    data.append((arr, label))
pickle.dump(data, open(out, 'wb'))
