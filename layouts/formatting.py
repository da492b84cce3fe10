"""Money and percentage formatting shared by every page."""

from __future__ import annotations

from decimal import Decimal

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(value: Decimal, currency: str = "USD", *, cents: bool = True) -> str:
    """Format an amount like $12,345.67 (or 12,345.67 CHF for currencies without a symbol)."""
    amount = f"{value:,.2f}" if cents else f"{value:,.0f}"
    symbol = _SYMBOLS.get(currency)
    if symbol is None:
        return f"{amount} {currency}"
    return f"-{symbol}{amount[1:]}" if amount.startswith("-") else f"{symbol}{amount}"


def percent(value: Decimal | None) -> str:
    """Format a signed percentage, or an em dash when there is nothing to compare with."""
    if value is None:
        return "—"
    return f"{value:+.1f}%"


def exact_money(value: Decimal, currency: str = "USD") -> str:
    """Format an amount with every decimal it has (at least two): $0.00012345678, $1,234.50."""
    text = f"{value:,f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    symbol = _SYMBOLS.get(currency)
    amount = f"{whole}.{fraction}"
    if symbol is None:
        return f"{amount} {currency}"
    return f"-{symbol}{amount[1:]}" if amount.startswith("-") else f"{symbol}{amount}"
