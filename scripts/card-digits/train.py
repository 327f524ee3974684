"""Trains the card-digit recogniser: a small CNN read by CTC over 12 classes (blank, 0-9, space).

python train.py FILE[:TIMES],... MINUTES THREADS [INIT.pt [OUT.pt]]; LR (environment) sets the
peak learning rate; FREEZE_BN=1 keeps the batch norms' statistics as they are (a net from
from_onnx.py). FILE is a pickle of (32xWx3 uint8 array, label) from gen.py or harvest.py,
taken TIMES times over. Checkpoints go to OUT.pt (digits.pt) every 500 steps and each epoch.
"""
import sys, time, pickle, random, math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lines import CHARS, collapsed

if __name__ == "__main__": torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)


def encode(label):
    return [CHARS.index(c) + 1 for c in label]


class Net(nn.Module):
    def __init__(self):
        super().__init__()

        def block(i, o, k=3, p=1):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=p, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        self.features = nn.Sequential(
            block(3, 24), nn.MaxPool2d(2, 2),
            block(24, 48), nn.MaxPool2d(2, 2),
            block(48, 64), block(64, 64), nn.MaxPool2d((2, 1), (2, 1)),
            block(64, 96), nn.MaxPool2d((2, 1), (2, 1)),
            block(96, 128, k=(2, 1), p=0),
        )
        self.context = nn.Sequential(
            nn.Conv1d(128, 128, 5, padding=2), nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 5, padding=2), nn.ReLU(inplace=True),
        )
        self.out = nn.Conv1d(128, len(CHARS) + 1, 1)

    def forward(self, x):
        f = self.features(x)  # N,128,1,W/4
        f = f.squeeze(2)
        f = f + self.context(f)
        return self.out(f)  # N,C,T


def batches(data, size, rng):
    order = sorted(range(len(data)), key=lambda i: data[i][0].shape[1] + rng.random() * 40)
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        width = max(data[i][0].shape[1] for i in chunk)
        width = (width + 3) // 4 * 4
        x = np.zeros((len(chunk), 32, width, 3), dtype=np.float32)
        targets, lengths, widths = [], [], []
        for j, i in enumerate(chunk):
            arr, label = data[i]
            x[j, :, :arr.shape[1]] = arr / 127.5 - 1.0
            # Padding: the crop's last column, as the engine pads.
            x[j, :, arr.shape[1]:] = x[j, :, arr.shape[1] - 1:arr.shape[1]]
            targets += encode(label)
            lengths.append(len(label))
            widths.append(width // 4)
        yield (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.tensor(targets),
               torch.tensor(lengths), torch.tensor(widths))


def decode(logits):
    # logits are N,C,T: each line's best class at each step.
    return [collapsed(row) for row in logits.argmax(1).tolist()]


if __name__ == '__main__':
    LR = float(__import__('os').environ.get('LR', '2e-3'))
    FREEZE_BN = __import__('os').environ.get('FREEZE_BN') == '1'
    OUT = sys.argv[5] if len(sys.argv) > 5 else 'digits.pt'
    files, minutes = sys.argv[1].split(','), float(sys.argv[2])
    data = []
    for f in files:
        times = 1
        if ':' in f:
            f, times = f.split(':'); times = int(times)
        data += pickle.load(open(f, 'rb')) * times
    rng = random.Random(0)
    rng.shuffle(data)
    val, train = data[:1000], data[1000:]
    net = Net()
    if len(sys.argv) > 4:
        net.load_state_dict(torch.load(sys.argv[4]))
    print('params', sum(p.numel() for p in net.parameters()))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    start = time.time()
    deadline = start + minutes * 60
    step, seen = 0, 0
    epoch = 0
    while time.time() < deadline:
        net.train()
        if FREEZE_BN:
            for module in net.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        for x, t, l, w in batches(train, 48, rng):
            frac = min(1.0, (time.time() - start) / (deadline - start))
            for g in opt.param_groups:
                g['lr'] = LR * (0.5 * (1 + math.cos(math.pi * frac))) + 5e-5
            logits = net(x)
            logp = F.log_softmax(logits, 1).permute(2, 0, 1)  # T,N,C
            loss = ctc(logp, t, w, l)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            seen += x.shape[0]
            if step % 500 == 0:
                torch.save(net.state_dict(), OUT)
            if step % 200 == 0:
                print(f'step {step} seen {seen} loss {loss.item():.4f} {time.time() - start:.0f}s lr {opt.param_groups[0]["lr"]:.5f}', flush=True)
            if time.time() > deadline:
                break
        epoch += 1
        net.eval()
        right = 0
        with torch.no_grad():
            for i in range(0, len(val), 1):
                arr, label = val[i]
                x = torch.from_numpy((arr / 127.5 - 1.0).astype(np.float32)).permute(2, 0, 1)[None]
                pad = (-x.shape[3]) % 4
                if pad:
                    x = torch.cat([x, x[..., -1:].expand(-1, -1, -1, pad)], 3)
                right += decode(net(x))[0] == label
        print(f'epoch {epoch} val exact {right / len(val):.4f}', flush=True)
        torch.save(net.state_dict(), OUT)
    torch.save(net.state_dict(), OUT)
