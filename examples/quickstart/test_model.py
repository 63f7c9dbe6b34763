import unittest

from model import Linear, make_data


class LinearTest(unittest.TestCase):
    def test_a_step_lowers_the_loss(self):
        data = make_data(256)
        model = Linear()
        first = model.step(data, lr=0.1)
        for _ in range(50):
            last = model.step(data, lr=0.1)
        self.assertLess(last, first)

    def test_it_learns_the_slope(self):
        data = make_data(512)
        model = Linear()
        for _ in range(300):
            model.step(data, lr=0.1)
        self.assertAlmostEqual(model.w, 3.0, delta=0.1)
        self.assertAlmostEqual(model.b, -2.0, delta=0.1)


if __name__ == "__main__":
    unittest.main()
