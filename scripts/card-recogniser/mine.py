"""python mine.py MODEL.onnx OUT DIR...: sorts cardgen's photos (written with --positions) by
whether MODEL.onnx misreads one of their number's lines, cut where it is at 1.4 times its height,
and links into OUT/hard every photo with a misread line and into OUT/easy as many of the others,
drawn at random, for `train.py OUT/hard OUT/easy`. PART=k PARTS=n sorts the k-th of every n photos
only (one process a core), writing OUT/hard-k.txt and OUT/easy-k.txt; with PART unset the lists
are read back, joined and linked."""
import glob, os, random, sys

import cv2

from eval_lines import line_at, read, recogniser
from train import photos


def misread(session, charset, image, lines):
    return any(read(session, charset, line_at(image, quad, 1.4)).replace(' ', '')
               != text.replace(' ', '') for quad, text in lines)


def sort(model, out, part, parts, folders):
    session, charset = recogniser(model)
    hard, easy = [], []
    for i, (photo, lines) in enumerate(photos(folders)):
        if i % parts == part:
            (hard if misread(session, charset, cv2.imread(photo), lines) else easy).append(photo)
    for name, kept in (('hard', hard), ('easy', easy)):
        with open(os.path.join(out, f'{name}-{part}.txt'), 'w') as file:
            file.writelines(photo + '\n' for photo in kept)
    print(f'part {part}: {len(hard)} of {len(hard) + len(easy)} photos with a misread line')


def link(out):
    def listed(name):
        return sorted(line for path in glob.glob(os.path.join(out, f'{name}-*.txt'))
                      for line in open(path).read().splitlines())

    hard, easy = listed('hard'), listed('easy')
    easy = random.Random(7).sample(easy, min(len(easy), len(hard)))
    for name, kept in (('hard', hard), ('easy', easy)):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for photo in kept:
            for path in (photo, photo[:-4] + '.txt'):
                os.symlink(os.path.abspath(path), os.path.join(out, name, os.path.basename(path)))
    print(f'{len(hard)} hard and {len(easy)} easy photos linked in {out}')


def main():
    model, out, folders = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    if 'PART' in os.environ:
        sort(model, out, int(os.environ['PART']), int(os.environ.get('PARTS', '1')), folders)
    else:
        if not glob.glob(os.path.join(out, 'hard-*.txt')):
            sort(model, out, 0, 1, folders)
        link(out)


if __name__ == '__main__':
    main()
