"""Per-row features of a table, two ways: a pure-Python loop over rows and values, and the same
arithmetic with NumPy on whole arrays. looptop's profile names the loop's line with the
`python-loop` hint, and stays quiet about the vectorized twin (which is also much faster).

    python3 features.py --mode loop
    python3 features.py --mode numpy
"""

import argparse
import time

import numpy as np


def features_loop(data):
    """One value per row, computed value by value in Python."""
    out = []
    for row in data.tolist():
        total = 0.0
        for v in row:
            total += v * v + 1.0 / (v + 1.0)
        out.append(total)
    return out


def features_numpy(data):
    """The same values, with NumPy doing the loops in native code."""
    return (data * data + 1.0 / (data + 1.0)).sum(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["loop", "numpy"], default="loop")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--cols", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=8)
    args = parser.parse_args()
    data = np.random.default_rng(0).random((args.rows, args.cols))
    compute = features_loop if args.mode == "loop" else features_numpy
    start = time.perf_counter()
    for _ in range(args.repeat):
        values = compute(data)
    took = time.perf_counter() - start
    print(f"{args.mode}: {len(values)} rows, checksum {float(np.sum(values)):.3f}")
    print(f"rows/s={args.rows * args.repeat / took:.0f}")


if __name__ == "__main__":
    main()
