"""Reads card photos with RapidOCR and the number picker a team would write, for the side-by-side
of scripts/bench-ocr.sh.

Usage: rapidocr-bench.py SET DIR. Each file in DIR is `<seed>-<number>.jpg`. RapidOCR runs with
its defaults (the models its wheel ships) on one inference thread; the picker groups the boxes it
finds into rows, joins each row's text, and takes the first run of 16 to 19 digits (spaces and
dashes between groups allowed) that passes the Luhn check, else the first run. Prints one line per
miss, then a `summary` line as ocrgate-ocr-bench does, with `in_text`: the share of photos whose
number stands among the digits of RapidOCR's text (every row's, joined), whatever a picker makes of
it. That is what its detector and recogniser read, so a miss of ocrgate's that RapidOCR has in its
text is one a mechanism of the reader's can mend.
"""

import pathlib
import re
import statistics
import sys
import time

from rapidocr import RapidOCR

RUN = re.compile(r"\d(?:[ -]?\d){15,18}")


def luhn(number):
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def rows(result):
    """Texts of the boxes, grouped into rows by vertical overlap, each row left to right."""
    if result.boxes is None:
        return []
    items = []
    for box, text in zip(result.boxes, result.txts):
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append((min(ys), max(ys), min(xs), text))
    items.sort()
    grouped = []
    for top, bottom, left, text in items:
        for row in grouped:
            overlap = min(bottom, row["bottom"]) - max(top, row["top"])
            if overlap > 0.5 * min(bottom - top, row["bottom"] - row["top"]):
                row["items"].append((left, text))
                row["top"], row["bottom"] = min(top, row["top"]), max(bottom, row["bottom"])
                break
        else:
            grouped.append({"top": top, "bottom": bottom, "items": [(left, text)]})
    return [" ".join(text for _, text in sorted(row["items"])) for row in grouped]


def pick(lines):
    runs = []
    for line in lines:
        for match in RUN.finditer(line):
            runs.append(re.sub(r"[ -]", "", match.group()))
    valid = [run for run in runs if luhn(run)]
    return (valid or runs or [None])[0]


def main():
    name, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    files = sorted(folder.glob("*.jpg"), key=lambda path: int(path.stem.split("-")[0]))
    engine(str(files[0]))  # warm-up, as ocrgate's sessions are loaded before its first read
    exact, in_text, latencies = 0, 0, []
    for path in files:
        number = path.stem.split("-")[1]
        started = time.perf_counter()
        result = engine(str(path))
        latencies.append((time.perf_counter() - started) * 1000)
        lines = rows(result)
        got = pick(lines)
        if number in re.sub(r"\D", "", "".join(lines)):
            in_text += 1
        if got == number:
            exact += 1
        else:
            print(f"  miss {path.name}: got {got[:6] + '…' + got[-4:] if got else None}")
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"summary reader=rapidocr set={name} n={len(files)} exact={100 * exact / len(files):.1f} "
        f"in_text={100 * in_text / len(files):.1f} "
        f"p50_ms={statistics.median(latencies):.1f} p95_ms={p95:.1f}"
    )


if __name__ == "__main__":
    main()
