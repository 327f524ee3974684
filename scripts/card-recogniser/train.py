"""Fine-tunes PP-OCRv6 small's recogniser to read the lines of card numbers, and to go on reading
every other print as it did (the original model's own reading is the target everywhere else).

python train.py MODEL.onnx STEPS OUT.onnx DIR...

MODEL.onnx is the original recogniser (`PP-OCRv6_rec_small.onnx`, from the rapidocr wheel: the
README says how); each DIR holds cardgen's photos written with `--positions` (`mine.py` picks
them). OUT.onnx is MODEL.onnx with its weights replaced, written every 250 steps and at the end;
its graph is the original's, node for node."""
import glob, importlib.util, math, os, random, sys, time

import cv2
import numpy as np
import onnx
import torch
from onnx2torch import convert

# The detector's script writes out the pads of SAME_UPPER nodes, which onnx2torch does not read,
# and writes trained weights back into the original graph.
_detector = importlib.util.spec_from_file_location(
    'card_detector', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  '../card-detector/train.py'))
card_detector = importlib.util.module_from_spec(_detector)
_detector.loader.exec_module(card_detector)

# The reader's line tensor: 48 pixels high, as wide as the aspect says, zeros up to 64 wide.
HEIGHT, MIN_WIDTH, MAX_WIDTH = 48, 64, 1600
# Each step: this many of a number's lines (taught) and of other strips of the photo (distilled).
NUMBER_LINES, OTHER_STRIPS = 6, 2


def logits_graph(model):
    """A copy of `model` whose output is its final softmax's input, for a log-softmax loss, and
    whose pads are written out."""
    model = card_detector.explicit_pads(model)
    output = model.graph.output[0]
    last = next(n for n in model.graph.node if output.name in n.output)
    assert last.op_type == 'Softmax', last.op_type
    model.graph.node.remove(last)
    output.name = last.input[0]
    return model


def photos(folders):
    for folder in folders:
        for txt in sorted(glob.glob(folder + '/*.txt')):
            rows = [row.split(',') for row in open(txt).read().splitlines()]
            lines = [(np.array([float(v) for v in row[:8]], np.float32).reshape(4, 2),
                      ' '.join(row[8].split())) for row in rows]
            yield txt[:-4] + '.jpg', lines


def tensor(crop):
    """`crop` (BGR) as the reader gives it to the recogniser."""
    h, w = crop.shape[:2]
    width = min(MAX_WIDTH, max(1, math.ceil(w * HEIGHT / h)))
    line = cv2.resize(crop, (width, HEIGHT), interpolation=cv2.INTER_AREA if h > HEIGHT
                      else cv2.INTER_LINEAR)
    planes = np.zeros((3, HEIGHT, max(width, MIN_WIDTH)), np.float32)
    planes[:, :, :width] = line.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return torch.from_numpy(planes)[None]


def cut(image, corners, width, height):
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    warp = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    return cv2.warpPerspective(image, warp, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def number_line(rng, image, quad):
    """A number's line cut as a detector's box would cut it: a margin of each size, sometimes an
    edge into the print, the corners a little off."""
    tl, tr, br, bl = quad
    along, down = (tr - tl + br - bl) / 2, (bl - tl + br - tr) / 2
    length, h = float(np.linalg.norm(along)), float(np.linalg.norm(down))
    if length < 8 or h < 4:
        return None
    u, v = along / length, down / h

    def grow():
        return rng.uniform(-0.12, 0.05) if rng.random() < 0.1 else rng.uniform(0.02, 0.5)

    top, bottom, left, right = rng.uniform(0, 0.4), rng.uniform(0, 0.4), grow(), grow()

    def jitter():
        return rng.uniform(-0.05, 0.05) * h * u + rng.uniform(-0.05, 0.05) * h * v

    corners = np.array([tl - left * h * u - top * h * v + jitter(),
                        tr + right * h * u - top * h * v + jitter(),
                        br + right * h * u + bottom * h * v + jitter(),
                        bl - left * h * u + bottom * h * v + jitter()])
    width = int(round(length + (left + right) * h))
    height = int(round(h * (1 + top + bottom)))
    return cut(image, corners, width, height) if width >= 8 and height >= 4 else None


def other_strip(rng, image, quads):
    """A strip of the photo, line-shaped, that misses every number's line: the other print."""
    ih, iw = image.shape[:2]
    for _ in range(20):
        h = rng.uniform(12, 60)
        w = min(iw - 1, h * rng.uniform(2, 14))
        x, y = rng.uniform(0, iw - w), rng.uniform(0, max(1, ih - h))
        box = (x, y, x + w, y + h)
        if all(box[2] < q[:, 0].min() or box[0] > q[:, 0].max() or box[3] < q[:, 1].min()
               or box[1] > q[:, 1].max() for q in quads):
            crop = image[int(y):int(y + h), int(x):int(x + w)]
            if crop.shape[0] >= 4 and crop.shape[1] >= 8:
                return crop
    return None


def one_channel(rng, crop):
    """A quarter of the time one colour channel alone in grey, as the reader's `channels` pass."""
    if rng.random() < 0.25:
        channel = rng.randrange(3)
        return np.repeat(crop[:, :, channel:channel + 1], 3, axis=2)
    return crop


def main():
    source, steps, out, folders = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    torch.set_num_threads(int(os.environ.get('THREADS', '2')))
    rng = random.Random(int(os.environ.get('SEED', '7')))
    original = onnx.load(source)
    meta = {p.key: p.value for p in original.metadata_props}
    charset = ['blank'] + meta['character'].splitlines() + [' ']
    index = {c: i for i, c in enumerate(charset) if c in '0123456789 '}
    teacher = convert(logits_graph(original)).eval()
    student = convert(logits_graph(original)).eval()  # batch norms keep their statistics
    for p in teacher.parameters():
        p.requires_grad_(False)

    save = card_detector.weights_writer(original, student, out)
    optimizer = torch.optim.Adam(student.parameters(), lr=float(os.environ.get('LR', '5e-5')))
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)

    data = list(photos(folders))
    print(len(data), 'photos', flush=True)
    start, smoothed = time.time(), None
    for step in range(1, steps + 1):
        photo, lines = rng.choice(data)
        image = cv2.imread(photo)  # BGR, as the reader's tensor
        taught, distilled = [], []
        for _ in range(NUMBER_LINES):
            quad, text = rng.choice(lines)
            crop = number_line(rng, image, quad)
            if crop is not None:
                taught.append((one_channel(rng, crop), text))
        quads = [quad for quad, _ in lines]
        for _ in range(OTHER_STRIPS):
            crop = other_strip(rng, image, quads)
            if crop is not None:
                distilled.append(one_channel(rng, crop))
        loss = torch.zeros(())
        for crop, text in taught:
            scores = student(tensor(crop)).log_softmax(-1)[0]  # T × classes
            target = torch.tensor([index[c] for c in text])
            loss = loss + ctc(scores[:, None], target[None], [scores.shape[0]], [len(text)])
        for crop in distilled:
            x = tensor(crop)
            with torch.no_grad():
                wanted = teacher(x).softmax(-1)
            got = student(x).log_softmax(-1)
            loss = loss + torch.nn.functional.kl_div(got, wanted, reduction='batchmean') \
                / wanted.shape[1]
        loss = loss / max(1, len(taught) + len(distilled))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        if step % 25 == 0:
            print(f'{step} steps, {time.time() - start:.0f} s, loss {smoothed:.4f}', flush=True)
        if step % 250 == 0:
            save()
    save()
    print('wrote', out, 'after', steps, 'steps')


if __name__ == '__main__':
    main()
