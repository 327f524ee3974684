#!/usr/bin/env python3
"""Fits the local reader's confidence model from what `ocrgate-ocr-bench --evidence` wrote.

Reads one or more CSV files (set, seed, right, confidence, then the features of
src/providers/local/confidence.rs in its FEATURE_NAMES order), fits a logistic regression of
`right` on the features by iteratively reweighted least squares with a small ridge penalty, and
prints the weights as Rust for `CALIBRATED`, with the reliability table of the fitted model on the
same readings. Standard library only.

Some features can only speak for a reading (a prefix somebody issues, the Luhn check passed) or
only against it. Their weights are held to that sign (SIGNS): where the readings are too few to
show it, a free fit can turn it round, and it would then trust, say, a prefix nobody issues above a
network's. A weight held at zero is freed again as soon as the readings pull it the allowed way.

    scripts/calibrate.py target/calibration/*.csv
"""

import csv
import math
import sys

# Ridge penalty on the standardised weights: keeps a feature that separates the few wrong
# readings perfectly from taking an unbounded weight.
RIDGE = 1.0
ITERATIONS = 50

# The sign each of these features' weights must have: +1 speaks only for a reading, -1 only
# against it. The rest are free.
SIGNS = {
    "certainty_logit": 1,
    "log_probability": 1,
    "luhn_valid": 1,
    "issuer_known": 1,
    "issuer_bank": 1,
    "usual_length": 1,
    "bank_grouped": 1,
    "settled": 1,
    "agreeing": 1,
    "uncommon_length": -1,
}


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


def fit_free(xs, ys, columns):
    """Logistic regression on the given columns of the standardised features (0 is the bias),
    by Newton's method with the ridge penalty; the other weights stay 0."""
    w = [0.0] * len(xs[0])
    for _ in range(ITERATIONS):
        ps = [sigmoid(sum(wi * xi for wi, xi in zip(w, x))) for x in xs]
        gradient = [sum((y - p) * x[j] for x, y, p in zip(xs, ys, ps)) for j in columns]
        hessian = [
            [sum(p * (1 - p) * x[i] * x[j] for x, p in zip(xs, ps)) for j in columns]
            for i in columns
        ]
        for n, j in enumerate(columns):
            if j:
                gradient[n] -= RIDGE * w[j]
                hessian[n][n] += RIDGE
        step = solve(hessian, gradient)
        for j, s in zip(columns, step):
            w[j] += s
        if max(abs(s) for s in step) < 1e-9:
            break
    return w


def fit(rows, names):
    k = len(names)
    # Standardise each feature; a constant one gets no weight.
    means = [sum(r[2][j] for r in rows) / len(rows) for j in range(k)]
    spreads = [
        math.sqrt(sum((r[2][j] - means[j]) ** 2 for r in rows) / len(rows)) or 1.0
        for j in range(k)
    ]
    xs = [[1.0] + [(r[2][j] - means[j]) / spreads[j] for j in range(k)] for r in rows]
    ys = [r[1] for r in rows]
    # Column j + 1 holds feature j. An active set: a weight that comes out against its sign is
    # held at 0 and the rest fitted again; one held is freed when the fit's gradient pulls it
    # the allowed way. Standardising keeps every weight's sign.
    signs = {j + 1: SIGNS.get(name, 0) for j, name in enumerate(names)}
    held = set()
    for _ in range(2 * k + 1):
        w = fit_free(xs, ys, [j for j in range(k + 1) if j not in held])
        wrong = [j for j in range(1, k + 1) if j not in held and signs[j] * w[j] < 0]
        if wrong:
            held.add(min(wrong, key=lambda j: signs[j] * w[j]))
            continue
        ps = [sigmoid(sum(wi * xi for wi, xi in zip(w, x))) for x in xs]
        pulled = [
            j for j in held
            if signs[j] * sum((y - p) * x[j] for x, y, p in zip(xs, ys, ps)) > 1e-9
        ]
        if not pulled:
            break
        held -= set(pulled)
    else:
        sys.exit("the fit kept weights against their signs: more readings are needed")
    # Back to the features' own scale.
    weights = [w[j + 1] / spreads[j] for j in range(k)]
    bias = w[0] - sum(weights[j] * means[j] for j in range(k))
    return bias, weights, [names[j - 1] for j in sorted(held)]


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
    bias, weights, held = fit(rows, names)
    wrong = sum(1 for r in rows if not r[1])
    print(f"// fitted on {len(rows)} readings ({wrong} wrong) from {', '.join(sys.argv[1:])}")
    print("const CALIBRATED: Weights = Weights {")
    print(f"    bias: {bias:.4f},")
    print("    weights: [")
    for name, weight in zip(names, weights):
        print(f"        {weight:.4f}, // {name}")
    print("    ],")
    print("};")
    for name in held:
        print(f"// held at 0, the readings pulling it against its sign: {name}")
    for label in sorted({r[0] for r in rows}):
        pairs = [(confidence(bias, weights, r[2]), r[1]) for r in rows if r[0] == label]
        reliability(label, pairs)


if __name__ == "__main__":
    main()
