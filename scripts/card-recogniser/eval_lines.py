"""python eval_lines.py DIR MODEL.onnx...: how many of the number's lines of cardgen's photos in
DIR (written with --positions) each recogniser reads exactly (digits; spaces not counted), cut
out where they are with the margins of a detector's box at three thicknesses."""
import sys

import cv2
import numpy as np
import onnxruntime

from train import cut, photos, tensor

THICKNESS = (1.2, 1.4, 1.7)


def read(session, charset, crop):
    scores = session.run(None, {session.get_inputs()[0].name: tensor(crop).numpy()})[0][0]
    best, text, before = scores.argmax(-1), [], 0
    for b in best:
        if b != before and b != 0:
            text.append(charset[b])
        before = b
    return ''.join(text)


def recogniser(path):
    """The model at `path` on one thread, with the characters its classes stand for."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options)
    meta = session.get_modelmeta().custom_metadata_map
    return session, ['blank'] + meta['character'].splitlines() + [' ']


def line_at(image, quad, thickness):
    """The line of `quad` cut out with a margin all round, `thickness` times its height in all."""
    tl, tr, br, bl = quad
    along, down = (tr - tl + br - bl) / 2, (bl - tl + br - tr) / 2
    length, h = float(np.linalg.norm(along)), float(np.linalg.norm(down))
    u, v, m = along / length, down / h, (thickness - 1) / 2 * h
    corners = np.array([tl - m * u - m * v, tr + m * u - m * v,
                        br + m * u + m * v, bl - m * u + m * v])
    return cut(image, corners, int(round(length + 2 * m)), int(round(h + 2 * m)))


def main():
    folder, models = sys.argv[1], sys.argv[2:]
    sessions = [recogniser(path) for path in models]
    read_at = [[0] * len(THICKNESS) for _ in models]
    any_of = [0] * len(models)
    count = 0
    for photo, lines in photos([folder]):
        image = cv2.imread(photo)
        for quad, text in lines:
            crops = [line_at(image, quad, thickness) for thickness in THICKNESS]
            count += 1
            wanted = text.replace(' ', '')
            for k, (session, charset) in enumerate(sessions):
                got = [read(session, charset, crop).replace(' ', '') == wanted for crop in crops]
                for t, ok in enumerate(got):
                    read_at[k][t] += ok
                any_of[k] += any(got)
    for path, at, anyone in zip(models, read_at, any_of):
        print(f'{path}: {count} lines; at {THICKNESS}: {at}; at one or another: {anyone}')


if __name__ == '__main__':
    main()
