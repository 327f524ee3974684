"""python gen.py SEED COUNT OUT.pkl: COUNT synthetic lines from lines.py, 32 pixels high."""
import sys, random, pickle
import lines
seed, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
data = []
for i in range(n):
    img, label = lines.render(rng)
    arr = lines.at_model_height(img)
    data.append((arr, label))
pickle.dump(data, open(out, 'wb'))
