"""A few training steps, timed, with a progress line per step in tqdm's format.

    python3 train.py --steps 200 --loader fast      # the step is the work
    python3 train.py --steps 200 --loader starved   # the loader is: its thread pinned, the step waits

Batches are made ahead by a `loader` thread (`--prefetch thread`, the default), a worker process
(`--prefetch process`, as DataLoader workers are) or in the loop itself (`--prefetch none`).
"""

import argparse
import os
import sys
import time

# One BLAS thread: the step is small, and idle OpenBLAS threads spin on a core while they wait
# for work, which would blur which thread is doing the work (what this example shows).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from loader import batches, encode, prefetched
from model import MLP, make_dataset


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--loader", choices=["fast", "starved"], default="fast")
    parser.add_argument("--prefetch", choices=["thread", "process", "none"], default="thread")
    args = parser.parse_args()

    x, y = make_dataset(8192)
    lines = encode(x, y)
    model = MLP(x.shape[1])
    start = time.perf_counter()
    waited = 0.0
    if args.prefetch == "none":
        feed = batches(lines, args.batch_size, args.loader)
    else:
        feed = prefetched(lines, args.batch_size, args.loader, args.prefetch)
    first_batch = None
    for step in range(1, args.steps + 1):
        asked = time.perf_counter()
        bx, by = next(feed)
        if first_batch is None:
            first_batch = time.perf_counter() - start  # start-up: the fast loader decodes here
        else:
            waited += time.perf_counter() - asked
        loss = model.step(bx, by, args.lr)
        rate = step / (time.perf_counter() - start)
        # tqdm's own format, so that looptop's `tqdm` and `lightning` presets read it.
        print(f"train: {100 * step // args.steps:3d}%| {step}/{args.steps} [{rate:.2f}it/s, loss={loss:.4f}]",
              flush=True)
    took = time.perf_counter() - start
    accuracy = model.accuracy(x, y)
    print(f"{args.steps} steps in {took:.2f} s (first batch after {first_batch:.2f} s), then "
          f"{100 * waited / (took - first_batch):.0f} % of the time waiting for data; accuracy {accuracy:.3f}")
    os.makedirs("checkpoints", exist_ok=True)
    model.w2.tofile(os.path.join("checkpoints", "w2.bin"))
    return 0 if accuracy > 0.75 else 1


if __name__ == "__main__":
    sys.exit(main())
