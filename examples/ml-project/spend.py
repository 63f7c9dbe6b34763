"""Spend per category over the events `prepare` writes, four ways. looptop sees which data files
the job's processes read, and for how long:

    python3 spend.py --source csv       # parses data/events.csv row by row, each pass: `columnar`
    python3 spend.py --convert          # once: the two columns it needs, as data/spend.npz
    python3 spend.py --source npz       # reads that copy: the fixed twin, no hint
    python3 spend.py --source npz --engine dask   # the same on a local Dask cluster: `local-cluster`

With --engine dask the chunks are summed by the workers of a `dask.distributed.LocalCluster`;
for a few megabytes of input, most of the run is the cluster starting.
"""

import argparse
import csv
import time

CATEGORIES = ["books", "games", "music", "tools", "toys"]


def from_csv(path):
    """Sums amounts per category with the csv module: every column of every row is parsed."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            totals[row["category"]] += float(row["amount"])
    return totals


def convert(path, out):
    """Writes the two columns the sums need as typed arrays, once."""
    import numpy as np

    codes, amounts = [], []
    index = {c: i for i, c in enumerate(CATEGORIES)}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            codes.append(index[row["category"]])
            amounts.append(float(row["amount"]))
    np.savez(out, category=np.array(codes, dtype=np.int8), amount=np.array(amounts, dtype=np.float64))


def chunk_sums(path, start, stop, rounds):
    """Per-category sums of rows start..stop of the arrays, `rounds` times (the work)."""
    import numpy as np

    # The file stays open while its chunk is summed, as a reader streaming it would keep it.
    with np.load(path) as data:
        codes = data["category"][start:stop]
        amounts = data["amount"][start:stop]
        sums = np.zeros(len(CATEGORIES))
        for _ in range(rounds):
            sums += np.bincount(codes, weights=np.sqrt(amounts * amounts), minlength=len(CATEGORIES))
    return sums / rounds


def from_npz(path, engine, chunks, rounds):
    """Sums the arrays in `chunks` pieces, in this process or on a local Dask cluster."""
    import numpy as np

    with np.load(path) as data:
        rows = len(data["amount"])
    bounds = [(rows * i // chunks, rows * (i + 1) // chunks) for i in range(chunks)]
    if engine == "dask":
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                futures = [client.submit(chunk_sums, path, a, b, rounds, pure=False) for a, b in bounds]
                parts = client.gather(futures)
    else:
        parts = [chunk_sums(path, a, b, rounds) for a, b in bounds]
    total = np.sum(parts, axis=0)
    return dict(zip(CATEGORIES, total.tolist()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["csv", "npz"], default="csv")
    parser.add_argument("--engine", choices=["local", "dask"], default="local")
    parser.add_argument("--convert", action="store_true")
    parser.add_argument("--csv", default="data/events.csv")
    parser.add_argument("--npz", default="data/spend.npz")
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--passes", type=int, default=3, help="reads of the CSV, as epochs would")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.convert:
        convert(args.csv, args.npz)
        print(f"wrote {args.npz}")
        return
    if args.source == "csv":
        for _ in range(args.passes):
            totals = from_csv(args.csv)
    else:
        totals = from_npz(args.npz, args.engine, args.chunks, args.rounds)
    took = time.perf_counter() - start
    print(" ".join(f"{c}={v:.0f}" for c, v in totals.items()))
    print(f"took {took:.2f} s")


if __name__ == "__main__":
    main()
