from shop import cart, money, tax


def invoice(prices, shipping):
    net = cart.total(prices) + money.cents(shipping)
    return {"net": net, "vat": tax.vat(net / 100)}
