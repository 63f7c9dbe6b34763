"""A few training steps, timed: the loop looptop reruns on every change."""

import argparse
import os
import time

from loader import batches
from model import Linear, make_data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    data = make_data(4096)
    model = Linear()
    start = time.perf_counter()
    for step, batch in zip(range(1, args.steps + 1), batches(data, args.batch_size)):
        loss = model.step(batch, args.lr)
        if step % 5 == 0 or step == args.steps:
            print(f"step {step:4d}  loss {loss:.4f}  w {model.w:.3f}  b {model.b:.3f}")
    took = time.perf_counter() - start
    print(f"{args.steps} steps in {took:.2f} s ({1000 * took / args.steps:.1f} ms/step)")
    os.makedirs("checkpoints", exist_ok=True)
    with open(os.path.join("checkpoints", "last.txt"), "w") as f:
        f.write(f"{model.w} {model.b}\n")


if __name__ == "__main__":
    main()
