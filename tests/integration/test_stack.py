"""The real processes: health of every part, refusals over HTTP, metrics across workers, figures."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import requests
from sqlalchemy import create_engine, func, select

from models import CostFact
from services.database import make_engine
from tests.stacks import http_session

pytestmark = pytest.mark.integration


def test_health_reports_every_part(stack):
    public = requests.get(f"{stack.base_url}/health/", timeout=10).json()
    assert public["status"] == "ok", public
    assert all(check == {"ok": True, "status": "ok"} for check in public["checks"].values()), public
    body = http_session(stack).get(f"{stack.base_url}/health/", timeout=10).json()  # signed in: the details
    assert body["status"] == "ok", body
    checks = body["checks"]
    if stack.kind == "production":
        assert checks["database"]["detail"] == "postgresql"
        assert checks["cache"]["detail"] == checks["broker"]["detail"] == "redis"
        assert checks["workers"]["detail"] == "2 responding (jobs: 1, interactive: 1)"
    else:
        assert checks["database"]["detail"] == "sqlite"
        assert checks["workers"]["detail"].startswith("embedded")
    assert requests.get(f"{stack.base_url}/health/ready/", timeout=10).json()["checks"]["migrations"]["ok"]


@pytest.mark.parametrize("path, status", [("/", 302), ("/_dash-layout", 401), ("/_dash-dependencies", 401),
                                          ("/api/v1/overview/", 401), ("/assets/app.css", 401),
                                          ("/metrics/", 401), ("/jobs", 302)])
def test_routes_refuse_requests_without_a_session(stack, path, status):
    assert requests.get(f"{stack.base_url}{path}", timeout=10, allow_redirects=False).status_code == status


def test_metrics_count_requests_of_every_gunicorn_worker(production_stack):
    stack = production_stack
    for _ in range(20):
        requests.get(f"{stack.base_url}/health/live/", timeout=10)
    text = requests.get(f"{stack.base_url}/metrics/", timeout=10,
                        headers={"Authorization": f"Bearer {stack.env['METRICS_TOKEN']}"}).text
    counts = [float(v) for v in re.findall(
        r'finops_http_requests_total\{method="GET",route="/health/live/",status="200"\} (\S+)', text)]
    assert sum(counts) >= 20


def test_overview_api_figures_equal_independent_sums_of_the_facts(stack):
    http = http_session(stack)
    body = http.get(f"{stack.base_url}/api/v1/overview/", timeout=30).json()
    today = dt.date.fromisoformat(body["kpis"]["as_of"])
    engine = make_engine(stack.database_url) if stack.kind == "embedded" else create_engine(stack.database_url)
    with engine.connect() as conn:
        mtd = sum((Decimal(str(v)) for v in conn.scalars(
            select(CostFact.unblended_cost).where(CostFact.usage_date >= today.replace(day=1),
                                                  CostFact.usage_date <= today))), Decimal(0))
        start, end = dt.date.fromisoformat(body["start"]), dt.date.fromisoformat(body["end"])
        in_range = sum((Decimal(str(v)) for v in conn.scalars(
            select(CostFact.unblended_cost).where(CostFact.usage_date >= start, CostFact.usage_date <= end))),
            Decimal(0))
        accounts = conn.scalar(select(func.count(func.distinct(CostFact.usage_account_id)))
                               .where(CostFact.usage_date >= start, CostFact.usage_date <= end))
    engine.dispose()
    assert Decimal(body["kpis"]["month_to_date"]) == mtd
    assert Decimal(body["total"]) == in_range
    assert len(body["by_account"]) == accounts >= 12
