import unittest

from shop import cart, invoice, money, report, tax


class Shop(unittest.TestCase):
    def test_total(self):
        self.assertEqual(cart.total([1.5, 2]), money.cents(3.5))

    def test_vat(self):
        self.assertEqual(tax.vat(10), money.cents(2))

    def test_invoice(self):
        self.assertEqual(invoice.invoice([10], 5), {"net": 1500, "vat": 300})

    def test_report(self):
        orders = [{"prices": [1], "shipping": 0, "refund": 0.5}]
        self.assertEqual(report.summary(orders), {"orders": 1, "refunds": 50})
