def to_cents(amount):
    return round(amount * 100)


def cents(amount):  # deprecated: use to_cents
    return to_cents(amount)
