"""Batches for training, from records stored as text lines (as a CSV or JSONL file would hold them).

`fast` decodes the whole dataset once with numpy (a preprocessed cache) and slices batches out
of it. `starved` decodes every batch record by record in pure Python, single-threaded: the
classic input pipeline that cannot keep an accelerator busy.
"""

import numpy as np


def encode(x, y):
    """The dataset as text lines: label, then the features, comma-separated."""
    return [f"{label:.0f}," + ",".join(f"{v:.5f}" for v in row) for row, label in zip(x, y)]


def decode_fast(lines):
    table = np.array([line.split(",") for line in lines], dtype=np.float32)
    return table[:, 1:], table[:, 0]


def decode_slow(lines, rounds=120):
    """Record by record; `rounds` of per-value work stand in for image or audio decoding."""
    rows, labels = [], []
    for line in lines:
        values = line.split(",")
        row = []
        for text in values[1:]:
            value = float(text)
            for _ in range(rounds):
                value = value * 1.0000001 - 0.0000001 * value
            row.append(value)
        rows.append(row)
        labels.append(float(values[0]))
    return np.array(rows, dtype=np.float32), np.array(labels, dtype=np.float32)


def batches(lines, batch_size, mode="fast"):
    """Endless batches over `lines`."""
    if mode == "fast":
        x, y = decode_fast(lines)
        while True:
            for start in range(0, len(lines), batch_size):
                yield x[start:start + batch_size], y[start:start + batch_size]
    while True:
        for start in range(0, len(lines), batch_size):
            yield decode_slow(lines[start:start + batch_size])


def name_this_thread(name):
    """Gives the calling thread a name the kernel shows (`/proc/<pid>/task/<tid>/comm`, `top -H`),
    as PyTorch does for its threads and Python 3.14+ does for every `threading.Thread`."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _produce(put, lines, batch_size, mode):
    name_this_thread("loader")
    for batch in batches(lines, batch_size, mode):
        put(batch)


def prefetched(lines, batch_size, mode="fast", how="thread", depth=4):
    """Endless batches made ahead by a `loader` thread (`how="thread"`) or a worker process
    (`how="process"`), as a DataLoader does; the training loop takes them from a queue and waits
    there when the loader cannot keep up."""
    if how == "thread":
        import queue
        import threading

        ready = queue.Queue(maxsize=depth)
        threading.Thread(target=_produce, args=(ready.put, lines, batch_size, mode), name="loader",
                         daemon=True).start()
    else:
        import multiprocessing

        ready = multiprocessing.Queue(maxsize=depth)
        multiprocessing.Process(target=_produce, args=(ready.put, lines, batch_size, mode), name="loader",
                                daemon=True).start()
    while True:
        yield ready.get()
