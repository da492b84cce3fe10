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
