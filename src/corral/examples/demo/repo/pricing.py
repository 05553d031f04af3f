"""Prices for a small shop."""


def apply_discount(price: float, percent: float) -> float:
    """Price after a percentage discount, rounded to cents."""
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    return round(price * percent / 100, 2)


def total(prices: list[float], percent: float = 0) -> float:
    return round(sum(apply_discount(p, percent) for p in prices), 2)
