"""python eval_crops.py MODEL.pt ERR CROPS [ERR CROPS ...]: exact digits on real crops against
PP-OCR's reading of the same crops. ERR is the bench's stderr with the line dump (see README.md),
CROPS the folder of dumped lines; each crop is labelled with the substring of the photo's true
number nearest to PP-OCR's reading, when near enough."""
import sys, re
import numpy as np
from PIL import Image
import torch
import lines


def lev(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
            prev, d[j] = d[j], cur
    return d[len(b)]


def labelled(err, crops):
    seed = number = None
    out = []
    for line in open(err):
        m = re.match(r'DIAG seed (\d+) (\d+)', line)
        if m:
            seed, number = int(m.group(1)), m.group(2)
            continue
        m = re.match(r'DUMP (\d+) (\S+) (.*)', line.rstrip('\n'))
        if not m or number is None:
            continue
        n, text = int(m.group(1)), m.group(3)
        digits = re.sub(r'\D', '', text)
        if len(digits) < 4 or re.search(r'[-:/.]', text):
            continue
        best = None
        for length in range(max(3, len(digits) - 2), len(digits) + 3):
            for at in range(0, len(number) - length + 1):
                cand = number[at:at + length]
                dist = lev(digits, cand)
                if best is None or dist < best[0]:
                    best = (dist, cand)
        if best and best[0] <= min(3, len(digits) // 4):
            out.append((f'{crops}/{n}.png', digits, best[1], seed))
    return out


def prepare(path):
    arr = lines.at_model_height(Image.open(path).convert('RGB')).astype(np.float32) / 127.5 - 1.0
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]
    pad = (-x.shape[3]) % 4
    if pad:
        x = torch.cat([x, x[..., -1:].expand(-1, -1, -1, pad)], 3)
    return x


if __name__ == '__main__':
    from train import Net, decode
    torch.set_num_threads(1)
    net = Net()
    net.load_state_dict(torch.load(sys.argv[1]))
    net.eval()
    for err, crops in zip(sys.argv[2::2], sys.argv[3::2]):
        items = labelled(err, crops)
        ppo = mine = both_wrong = fixed = broke = 0
        with torch.no_grad():
            for path, read, truth, seed in items:
                got = re.sub(r'\D', '', decode(net(prepare(path)))[0])
                a, b = read == truth, got == truth
                ppo += a
                mine += b
                fixed += b and not a
                broke += a and not b
        n = len(items)
        print(f'{err}: {n} crops labelled; PP-OCR exact {ppo / n:.3f}, digit model {mine / n:.3f}; fixed {fixed}, broke {broke}')
