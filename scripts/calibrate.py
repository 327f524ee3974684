#!/usr/bin/env python3
"""Fits the local reader's confidence model from what `ocrgate-ocr-bench --evidence` wrote.

Reads one or more CSV files (set, seed, right, confidence, then the features of
src/providers/local/confidence.rs in its FEATURE_NAMES order), fits a logistic regression of
`right` on the features by iteratively reweighted least squares with a small ridge penalty, and
prints the weights as Rust for `CALIBRATED`, with the reliability table of the fitted model on the
same readings. Standard library only.

    scripts/calibrate.py target/calibration/*.csv
"""

import csv
import math
import sys

# Ridge penalty on the standardised weights: keeps a feature that separates the few wrong
# readings perfectly from taking an unbounded weight.
RIDGE = 1.0
ITERATIONS = 50


def read(paths):
    names, rows = None, []
    for path in paths:
        with open(path, newline="") as file:
            reader = csv.reader(file)
            header = next(reader)
            if names is None:
                names = header[4:]
            elif header[4:] != names:
                sys.exit(f"{path}: its features are not those of {paths[0]}")
            for row in reader:
                rows.append((row[0], int(row[2]), [float(x) for x in row[4:]]))
    return names, rows


def solve(matrix, vector):
    """Solves matrix x = vector by Gaussian elimination with partial pivoting."""
    n = len(vector)
    a = [row[:] + [vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[col][col] != 0:
                factor = a[r][col] / a[col][col]
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    return [a[i][n] / a[i][i] if a[i][i] != 0 else 0.0 for i in range(n)]


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


def fit(rows, k):
    # Standardise each feature; a constant one gets no weight.
    means = [sum(r[2][j] for r in rows) / len(rows) for j in range(k)]
    spreads = [
        math.sqrt(sum((r[2][j] - means[j]) ** 2 for r in rows) / len(rows)) or 1.0
        for j in range(k)
    ]
    xs = [[1.0] + [(r[2][j] - means[j]) / spreads[j] for j in range(k)] for r in rows]
    ys = [r[1] for r in rows]
    w = [0.0] * (k + 1)
    for _ in range(ITERATIONS):
        ps = [sigmoid(sum(wi * xi for wi, xi in zip(w, x))) for x in xs]
        gradient = [sum((y - p) * x[j] for x, y, p in zip(xs, ys, ps)) for j in range(k + 1)]
        hessian = [
            [sum(p * (1 - p) * x[i] * x[j] for x, p in zip(xs, ps)) for j in range(k + 1)]
            for i in range(k + 1)
        ]
        for j in range(1, k + 1):
            gradient[j] -= RIDGE * w[j]
            hessian[j][j] += RIDGE
        step = solve(hessian, gradient)
        w = [wi + si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-9:
            break
    # Back to the features' own scale.
    weights = [w[j + 1] / spreads[j] for j in range(k)]
    bias = w[0] - sum(weights[j] * means[j] for j in range(k))
    return bias, weights


def confidence(bias, weights, features):
    return min(max(sigmoid(bias + sum(w * x for w, x in zip(weights, features))), 0.001), 0.999)


def reliability(label, pairs):
    bins = [[0, 0, 0.0] for _ in range(10)]
    for c, right in pairs:
        b = bins[min(int(c * 10), 9)]
        b[0] += 1
        b[1] += right
        b[2] += c
    ece = sum(abs(b[1] / b[0] - b[2] / b[0]) * b[0] for b in bins if b[0]) / max(len(pairs), 1)
    print(f"// {label}: {len(pairs)} readings, expected calibration error {ece:.4f}")
    for i, (count, right, total) in enumerate(bins):
        if count:
            print(f"//   {i / 10:.1f}-{(i + 1) / 10:.1f}: {count:5} readings, "
                  f"{100 * right / count:5.1f}% right, mean confidence {total / count:.3f}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    names, rows = read(sys.argv[1:])
    bias, weights = fit(rows, len(names))
    wrong = sum(1 for r in rows if not r[1])
    print(f"// fitted on {len(rows)} readings ({wrong} wrong) from {', '.join(sys.argv[1:])}")
    print("const CALIBRATED: Weights = Weights {")
    print(f"    bias: {bias:.4f},")
    print("    weights: [")
    for name, weight in zip(names, weights):
        print(f"        {weight:.4f}, // {name}")
    print("    ],")
    print("};")
    for label in sorted({r[0] for r in rows}):
        pairs = [(confidence(bias, weights, r[2]), r[1]) for r in rows if r[0] == label]
        reliability(label, pairs)


if __name__ == "__main__":
    main()
