"""QR decoders beside ocrgate's, on the images `ocrgate-qr-bench --write DIR` wrote: zbar (the
library Debian's zbarimg runs, through pyzbar) and OpenCV's WeChat QR decoder
(cv2.wechat_qrcode_WeChatQRCode from opencv-contrib-python-headless, the decoder WeChat
open-sourced). WeChat's decoder runs without its CNN detector and super-resolution model files,
which are fetched from GitHub and not from a package registry: it falls back to its traditional
detector. Each decoder takes the file's bytes (the image decode is timed too, as in
ocrgate-qr-bench) and a read counts when the invoice title's text is among what it found.
Run it pinned to one core (`taskset -c 0`). Prints the decode rate and p50/p95 per set.

usage: python scripts/qr-bench.py DIR
"""

import collections
import json
import pathlib
import statistics
import sys
import time

import cv2
import numpy
from pyzbar import pyzbar

cv2.setNumThreads(1)
wechat = cv2.wechat_qrcode_WeChatQRCode()


def zbar(data: bytes) -> list[str]:
    gray = cv2.imdecode(numpy.frombuffer(data, numpy.uint8), cv2.IMREAD_GRAYSCALE)
    found = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [code.data.decode("utf-8", "replace") for code in found]


def opencv_wechat(data: bytes) -> list[str]:
    image = cv2.imdecode(numpy.frombuffer(data, numpy.uint8), cv2.IMREAD_COLOR)
    texts, _points = wechat.detectAndDecode(image)
    return list(texts)


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def main() -> None:
    root = pathlib.Path(sys.argv[1])
    expected = json.loads((root / "expected.json").read_text())
    by_set = collections.defaultdict(list)
    for name, text in expected.items():
        by_set[name.split("/")[0]].append((root / name, text))
    decoders = {"zbar": zbar, "opencv-wechat": opencv_wechat}
    header = "  ".join(f"{name:>13} {'p50':>7} {'p95':>7}" for name in decoders)
    print(f"{'set':<13} {'images':>6}  {header}")
    for scene, images in by_set.items():
        row = f"{scene:<13} {len(images):>6}"
        for decode in decoders.values():
            read, latency = 0, []
            for path, text in images:
                data = path.read_bytes()
                started = time.perf_counter()
                texts = decode(data)
                latency.append((time.perf_counter() - started) * 1000)
                read += text in texts
            row += (
                f"  {100 * read / len(images):>12.1f}% {quantile(latency, 0.5):>5.0f}ms"
                f" {quantile(latency, 0.95):>5.0f}ms"
            )
        print(row)


if __name__ == "__main__":
    main()
