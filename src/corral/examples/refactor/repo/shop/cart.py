from shop import money


def total(prices):
    return sum(money.cents(p) for p in prices)
