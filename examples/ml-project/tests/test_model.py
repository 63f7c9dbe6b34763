import numpy as np

from loader import decode_fast, decode_slow, encode
from model import MLP, make_dataset


def test_both_loaders_decode_the_same_batch():
    x, y = make_dataset(16, features=4)
    lines = encode(x, y)
    fx, fy = decode_fast(lines)
    sx, sy = decode_slow(lines, rounds=1)
    np.testing.assert_allclose(fx, sx, atol=1e-4)
    np.testing.assert_array_equal(fy, sy)


def test_training_lowers_the_loss_and_learns():
    x, y = make_dataset(1024, features=8)
    model = MLP(8, hidden=64)
    first = model.loss(x, y)
    for _ in range(200):
        model.step(x, y, lr=0.5)
    assert model.loss(x, y) < first * 0.7
    assert model.accuracy(x, y) > 0.85
