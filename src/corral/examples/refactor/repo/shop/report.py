from shop import invoice, money


def summary(orders):
    lines = [invoice.invoice(o["prices"], o["shipping"]) for o in orders]
    return {"orders": len(lines), "refunds": sum(money.cents(o.get("refund", 0)) for o in orders)}
