"""A deliberately slow data loader: each batch costs `delay` seconds of "decoding"."""

import time


def batches(data, batch_size, delay=0.02):
    while True:
        for start in range(0, len(data), batch_size):
            time.sleep(delay)  # stands in for reading and decoding files
            yield data[start:start + batch_size]
