"""Real crops from the reader's own runs, labelled with the true digits aligned to what PP-OCR
read (its spaces carried over)."""
import sys, re, pickle
from difflib import SequenceMatcher
from PIL import Image
import eval_crops
import lines

out = []
for err, crops in zip(sys.argv[2::2], sys.argv[3::2]):
    texts = {}
    for line in open(err):
        m = re.match(r'DUMP (\d+) (\S+) (.*)', line.rstrip('\n'))
        if m:
            texts[int(m.group(1))] = m.group(3)
    for path, read, truth, seed in eval_crops.labelled(err, crops):
        n = int(path.rsplit('/', 1)[1][:-4])
        text = texts[n].strip()
        # Spaces: after the k-th digit read, mapped onto the truth by the alignment.
        spaces_after = set()
        k = 0
        for ch in text:
            if ch.isdigit():
                k += 1
            elif ch == ' ' and k:
                spaces_after.add(k)
        mapping = {}
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, read, truth, autojunk=False).get_opcodes():
            if tag in ('equal', 'replace') and i2 - i1 == j2 - j1:
                for d in range(i2 - i1):
                    mapping[i1 + d + 1] = j1 + d + 1
        label = ''
        truth_spaces = {mapping[k] for k in spaces_after if k in mapping}
        for j, ch in enumerate(truth, 1):
            label += ch
            if j in truth_spaces and j < len(truth):
                label += ' '
        out.append((lines.at_model_height(Image.open(path).convert('RGB')), label))
print(len(out))
for a, l in out[:10]:
    print(a.shape, l)
pickle.dump(out, open(sys.argv[1], 'wb'))
