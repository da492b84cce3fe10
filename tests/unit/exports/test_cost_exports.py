"""Cost exports: the CSV and PDF of a cost query equal the API's answer, formulas are neutralised,
bad parameters are refused with nothing written, and every export is audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import AuditLog
from services import database, exports
from services.costs import cache, ingest
from tests.factories import fact, make_user
from tests.web import sign_in_and_enrol

ROWS = [
    fact(dt.date(2026, 1, 5), "111111111111", "Amazon EC2", "10.00000000001", usage_type="BoxUsage"),
    fact(dt.date(2026, 1, 6), "222222222222", "=HYPERLINK(\"http://x\")", "2.25", usage_type="@SUM(A1)"),
    fact(dt.date(2026, 1, 7), "222222222222", "Credit “sm” 漢字", "-1.50", usage_type="-cmd", charge_category="Credit"),
]
PARAMS = "start=2026-01-01&end=2026-01-31&granularity=total&group_by=service&group_by=usage_type"


@pytest.fixture()
def signed_in(app, client):
    cache.configure(None)
    with database.session_scope() as session:
        ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1), rows=ROWS)
        make_user(session, username="ezra")
    sign_in_and_enrol(client, "ezra")
    return client


def _exports_audited() -> int:
    with database.session_scope() as session:
        return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "costs.export"))


def test_the_csv_holds_exact_decimals_with_unit_and_currency_and_equals_the_api(signed_in):
    response = signed_in.get(f"/exports/costs.csv?{PARAMS}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="costs_2026-01-01_2026-01-31.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["service", "usage_type", "unblended_cost (USD)"]
    api = signed_in.get(f"/api/v1/costs/?{PARAMS}").get_json()
    assert sum(Decimal(r[-1]) for r in rows[1:]) == Decimal(api["total"]) == Decimal("10.75000000001")
    assert ["Amazon EC2", "BoxUsage", "10.00000000001"] in rows
    assert _exports_audited() == 1


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised_and_numbers_are_not(signed_in):
    rows = list(csv.reader(io.StringIO(signed_in.get(f"/exports/costs.csv?{PARAMS}").get_data(as_text=True))))
    shown = {tuple(r[:2]): Decimal(r[2]) for r in rows[1:]}
    assert shown[("'=HYPERLINK(\"http://x\")", "'@SUM(A1)")] == Decimal("2.25")
    assert shown[("Credit “sm” 漢字", "'-cmd")] == Decimal("-1.50")  # a negative amount stays a number
    assert all(not r[2].startswith("'") for r in rows[1:])


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_every_formula_start_gets_a_quote(text):
    assert exports.neutralise(text) == f"'{text}"
    assert exports.neutralise(f"a{text}") == f"a{text}"


def test_the_pdf_names_its_filters_its_maker_and_pages_and_its_total_equals_the_api(signed_in):
    from pypdf import PdfReader

    response = signed_in.get(f"/exports/costs.pdf?{PARAMS}&filter.account=222222222222&filter.account=111111111111")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    assert "Cost report" in text and "2026-01-01 to 2026-01-31" in text and "ezra" in text
    assert "Filter: account" in text and "Page 1 of 1" in text
    assert "Total: 10.75 USD" in text
    assert "Credit “sm” ??" in text  # what the font cannot draw is replaced, not a crash
    assert _exports_audited() == 1


def test_a_long_table_runs_over_pages_numbered_n_of_m():
    from pypdf import PdfReader

    from services.costs.queries import CostQuery, CostResult, CostRow

    query = CostQuery(start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31), granularity="total", group_by=("service",))
    rows = tuple(CostRow(None, (f"service {i}",), Decimal(i)) for i in range(120))
    result = CostResult(query=query, rows=rows, total=sum((r.amount for r in rows), Decimal(0)), table="x")
    pdf = exports.costs_pdf(result, currency="USD", title="Cost report", filters=[], user="u",
                            generated_at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) > 1 and f"Page {len(pages)} of {len(pages)}" in pages[-1].extract_text()


@pytest.mark.parametrize("params, status", [
    ("start=2026-01-01&end=2026-01-31&colour=red", 400),
    ("start=2026-02-01&end=2026-01-01", 422),
    ("start=2026-01-01&end=2026-01-31&group_by=colour", 422),
    ("end=2026-01-31", 422),
])
def test_bad_parameters_are_refused_as_the_api_does_and_nothing_is_audited(signed_in, params, status):
    for kind in ("csv", "pdf"):
        response = signed_in.get(f"/exports/costs.{kind}?{params}")
        assert response.status_code == status and response.mimetype == "application/problem+json"
        assert response.status_code == signed_in.get(f"/api/v1/costs/?{params}").status_code
    assert _exports_audited() == 0


def test_an_export_needs_a_session(client):
    assert client.get(f"/exports/costs.csv?{PARAMS}").status_code in (302, 401)
