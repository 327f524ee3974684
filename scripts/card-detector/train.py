"""Fine-tunes PP-OCRv6 small's text detector to find the lines of card numbers, and to go on
finding every other text as it did (the original model's own map is the target everywhere else).

python train.py MODEL.onnx STEPS OUT.onnx DIR...

MODEL.onnx is the original detector (`PP-OCRv6_det_small.onnx` of the rapidocr wheel, as the
README says); each DIR holds cardgen's photos written with `--positions`. OUT.onnx is MODEL.onnx
with its weights replaced, written every 500 steps and at the end; its graph is the original's,
node for node."""
import glob, os, random, sys, time

import cv2
import numpy as np
import onnx
import pyclipper
import torch
from onnx import helper, numpy_helper
from onnx2torch import convert

# DB's targets: a line's region shrunk by this ratio is text (the reader grows it back by 1.6).
SHRINK_RATIO = 0.4
# How much more a pixel of a number's line weighs than any other.
NUMBER_WEIGHT = 5.0


def explicit_pads(model):
    """A copy of `model` whose SAME_UPPER convolutions and poolings say their pads (onnx2torch
    reads no auto_pad); the reader's inputs are multiples of 32, so every stride divides them."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if 'auto_pad' not in attrs or attrs['auto_pad'].s != b'SAME_UPPER':
            continue
        if node.op_type == 'Conv':
            kernel = list(weights[node.input[1]].dims[2:])
        else:
            kernel = list(attrs['kernel_shape'].ints)
        strides = list(attrs['strides'].ints) if 'strides' in attrs else [1] * len(kernel)
        totals = [max(k - s, 0) for k, s in zip(kernel, strides)]
        node.attribute.remove(attrs['auto_pad'])
        node.attribute.append(helper.make_attribute(
            'pads', [t // 2 for t in totals] + [t - t // 2 for t in totals]))
    return model


def weights_writer(original, model, out):
    """A function that writes `original` to `out` with `model`'s weights in place of those it was
    converted from: each parameter is matched to the one initializer of its shape and values, so
    the graph stays the original's, node for node."""
    initializers = {i.name: numpy_helper.to_array(i) for i in original.graph.initializer}
    taken, source_of = set(), {}
    for name, p in model.named_parameters():
        value = p.detach().numpy()
        matches = [n for n, v in initializers.items()
                   if n not in taken and v.shape == value.shape and np.array_equal(v, value)]
        # Two alike could have their trained weights written back the wrong way round.
        assert len(matches) == 1, (name, matches)
        taken.add(matches[0])
        source_of[name] = matches[0]

    def save():
        trained = {source_of[n]: p.detach().numpy() for n, p in model.named_parameters()}
        for i in original.graph.initializer:
            if i.name in trained:
                i.CopyFrom(numpy_helper.from_array(trained[i.name].astype(np.float32), i.name))
        onnx.save(original, out)

    return save


def shrunk(quad):
    area, length = abs(cv2.contourArea(quad)), cv2.arcLength(quad, True)
    if length == 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath([tuple(map(int, p)) for p in quad], pyclipper.JT_ROUND,
                   pyclipper.ET_CLOSEDPOLYGON)
    inner = offset.Execute(-area * (1 - SHRINK_RATIO ** 2) / length)
    return np.array(inner[0], np.int32) if inner else None


def photos(folders):
    for folder in folders:
        for txt in sorted(glob.glob(folder + '/*.txt')):
            quads = [np.array([float(v) for v in row.split(',')[:8]], np.float32).reshape(4, 2)
                     for row in open(txt).read().splitlines()]
            yield txt[:-4] + '.jpg', quads


def sample(rng, photo, quads):
    """A crop of `photo` (at most 640 square) scaled to a side the reader detects at, turned a
    little or not, sometimes one colour channel alone; its number's pixels and what to count."""
    image = cv2.imread(photo)  # BGR, as the reader's tensor
    h, w = image.shape[:2]
    scale = rng.uniform(480, 1280) / max(h, w)
    angle = rng.uniform(-8, 8) if rng.random() < 0.5 else 0.0
    width, height = max(32, int(w * scale)), max(32, int(h * scale))
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0) * scale
    image = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE,
                           flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.25:  # as the reader's `channels` pass sees it
        channel = rng.randrange(3)
        image = np.repeat(image[:, :, channel:channel + 1], 3, axis=2)
    cw, ch = min(640, width // 32 * 32), min(640, height // 32 * 32)
    x0, y0 = rng.randint(0, width - cw), rng.randint(0, height - ch)
    image = image[y0:y0 + ch, x0:x0 + cw]
    number = np.zeros((ch, cw), np.float32)
    counted = np.ones((ch, cw), np.float32)
    for quad in quads:
        quad = cv2.transform(quad[None], turn)[0] - np.array([x0, y0], np.float32)
        # The line's rim, outside its shrunk region, is neither text nor ground: not counted.
        cv2.fillPoly(counted, [np.round(quad).astype(np.int32)], 0.0)
        inner = shrunk(quad)
        if inner is not None:
            cv2.fillPoly(number, [inner], 1.0)
    counted = np.maximum(counted, number)
    tensor = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
    return tensor[None], torch.from_numpy(number), torch.from_numpy(counted)


def main():
    source, steps, out, folders = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    torch.set_num_threads(int(os.environ.get('THREADS', '2')))
    rng = random.Random(int(os.environ.get('SEED', '7')))
    original = onnx.load(source)
    teacher = convert(explicit_pads(original)).eval()
    student = convert(explicit_pads(original)).train()
    for p in teacher.parameters():
        p.requires_grad_(False)

    save = weights_writer(original, student, out)
    optimizer = torch.optim.Adam(student.parameters(), lr=float(os.environ.get('LR', '1.5e-4')))

    data = list(photos(folders))
    print(len(data), 'photos', flush=True)
    start, smoothed = time.time(), None
    for step in range(1, steps + 1):
        x, number, counted = sample(rng, *rng.choice(data))
        with torch.no_grad():
            target = teacher(x)[0, 0]
        y = student(x)[0, 0].clamp(1e-6, 1 - 1e-6)
        target = torch.where((number > 0) | (counted == 0), number, target)
        weight = torch.where(number > 0, torch.full_like(number, NUMBER_WEIGHT), counted)
        loss = (torch.nn.functional.binary_cross_entropy(y, target, reduction='none')
                * weight).sum() / weight.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        if step % 50 == 0:
            print(f'{step} steps, {time.time() - start:.0f} s, loss {smoothed:.4f}', flush=True)
        if step % 500 == 0:
            save()
    save()
    print('wrote', out, 'after', steps, 'steps')


if __name__ == '__main__':
    main()
