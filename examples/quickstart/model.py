"""A linear model trained with mini-batch SGD: small enough to read, real enough to time."""

import random


def make_data(n, seed=0):
    """Synthetic regression data: y = 3x - 2 + noise."""
    rng = random.Random(seed)
    xs = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    return [(x, 3.0 * x - 2.0 + rng.gauss(0.0, 0.1)) for x in xs]


class Linear:
    def __init__(self):
        self.w = 0.0
        self.b = 0.0

    def predict(self, x):
        return self.w * x + self.b

    def step(self, batch, lr):
        """One SGD step on mean squared error; returns the batch loss."""
        grad_w = grad_b = loss = 0.0
        for x, y in batch:
            err = self.predict(x) - y
            loss += err * err
            grad_w += 2.0 * err * x
            grad_b += 2.0 * err
        n = len(batch)
        self.w -= lr * grad_w / n
        self.b -= lr * grad_b / n
        return loss / n
