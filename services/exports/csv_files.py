"""CSV of a cost query: one row per answer row, exact decimals, unit and currency in the header."""

from __future__ import annotations

import csv
import io

from services.costs.queries import CostResult

#: A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Make a text cell safe to open in a spreadsheet: a leading quote before a formula character."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def costs_csv(result: CostResult, *, currency: str) -> str:
    """The answer's rows as CSV; amounts are exact decimals (numbers, never neutralised)."""
    query = result.query
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = [*(["period"] if query.granularity != "total" else []), *query.group_by,
              f"{query.metric} ({currency})"]
    writer.writerow(header)
    for row in result.rows:
        period = [row.period.isoformat() if row.period else ""] if query.granularity != "total" else []
        writer.writerow([*period, *(neutralise(k) for k in row.keys), str(row.amount)])
    return out.getvalue()
