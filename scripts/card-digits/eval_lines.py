"""python eval_lines.py MODEL.onnx,... LINES.pkl...: how many lines of each pickle (photo_lines.py's
or gen.py's) each exported recogniser reads exactly, and with its digits right."""
import os, sys, pickle, numpy as np, onnxruntime
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lines import collapsed
def read(session, arr):
    x = (arr / 127.5 - 1.0).astype(np.float32).transpose(2, 0, 1)[None]
    pad = (-x.shape[3]) % 4
    if pad: x = np.concatenate([x, np.repeat(x[..., -1:], pad, 3)], 3)
    return collapsed(session.run(None, {'x': x})[0][0].argmax(1).tolist())
models = sys.argv[1].split(',')
for f in sys.argv[2:]:
    data = pickle.load(open(f, 'rb'))
    for m in models:
        s = onnxruntime.InferenceSession(m, providers=['CPUExecutionProvider'])
        right = sum(read(s, a) == l for a, l in data)
        digits = sum(read(s, a).replace(' ', '') == l.replace(' ', '') for a, l in data)
        print(f, m, f'exact {right}/{len(data)} digits {digits}/{len(data)}')
