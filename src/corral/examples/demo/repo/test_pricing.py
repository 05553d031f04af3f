import unittest

from pricing import apply_discount, total


class PricingTest(unittest.TestCase):
    def test_discount(self) -> None:
        self.assertEqual(apply_discount(200.0, 25), 150.0)

    def test_no_discount(self) -> None:
        self.assertEqual(apply_discount(19.99, 0), 19.99)

    def test_total(self) -> None:
        self.assertEqual(total([10.0, 20.0], 10), 27.0)

    def test_rejects_bad_percent(self) -> None:
        with self.assertRaises(ValueError):
            apply_discount(10.0, 120)


if __name__ == "__main__":
    unittest.main()
