from shop import money


def vat(amount, rate=0.2):
    return money.cents(amount * rate)
