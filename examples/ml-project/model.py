"""A small multilayer perceptron in numpy (one hidden ReLU layer, a logistic output): small
enough to read, enough arithmetic per step that the step, not the loader, is the work."""

import numpy as np


def make_dataset(n, features=64, seed=0):
    """Synthetic data: labels from a hidden non-linear rule plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    hidden = rng.normal(size=features).astype(np.float32)
    logits = np.tanh(x @ hidden) + 0.3 * x[:, 0] * x[:, 1] + rng.normal(scale=0.2, size=n)
    return x, (logits > 0).astype(np.float32)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class MLP:
    def __init__(self, features, hidden=2048, seed=0):
        rng = np.random.default_rng(seed)
        self.w1 = (rng.normal(size=(features, hidden)) / np.sqrt(features)).astype(np.float32)
        self.b1 = np.zeros(hidden, dtype=np.float32)
        self.w2 = (rng.normal(size=hidden) / np.sqrt(hidden)).astype(np.float32)
        self.b2 = np.float32(0.0)

    def forward(self, x):
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        return h, sigmoid(h @ self.w2 + self.b2)

    def predict(self, x):
        return self.forward(x)[1]

    def loss(self, x, y):
        p = np.clip(self.predict(x), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    def step(self, x, y, lr):
        """One gradient step on the batch; returns the batch loss before the step."""
        h, p = self.forward(x)
        loss = float(-np.mean(y * np.log(np.clip(p, 1e-7, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-7, 1))))
        grad_out = (p - y) / len(y)
        grad_h = np.outer(grad_out, self.w2) * (h > 0)
        self.w2 -= lr * (h.T @ grad_out)
        self.b2 -= lr * float(np.sum(grad_out))
        self.w1 -= lr * (x.T @ grad_h)
        self.b1 -= lr * np.sum(grad_h, axis=0)
        return loss

    def accuracy(self, x, y):
        return float(np.mean((self.predict(x) > 0.5) == (y > 0.5)))
