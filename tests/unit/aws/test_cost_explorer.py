"""Cost Explorer forecasts and anomalies (moto lacks both): botocore's Stubber answers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from models import CostAnomaly, CostForecast
from services.aws import _plumbing, cost_explorer

TODAY = dt.date(2025, 3, 10)


def test_forecast_to_month_end_is_stored(session, ce):
    # moto does not implement GetCostForecast
    client, stubber, meter = ce
    stubber.add_response("get_cost_forecast", {
        "Total": {"Amount": "18234.5678901234", "Unit": "USD"},
        "ForecastResultsByTime": [{"TimePeriod": {"Start": "2025-03-10", "End": "2025-04-01"},
                                   "MeanValue": "18234.5678901234", "PredictionIntervalLowerBound": "16011.2",
                                   "PredictionIntervalUpperBound": "20457.9"}]},
        {"TimePeriod": {"Start": "2025-03-10", "End": "2025-04-01"}, "Metric": "UNBLENDED_COST",
         "Granularity": "MONTHLY", "PredictionIntervalLevel": 80})

    outcome = cost_explorer.collect_forecast(session, ce=client, profile_id=None, payer_account_id="123456789012",
                                          today=TODAY)

    row = session.scalar(select(CostForecast))
    assert outcome.rows == 1 and (meter.ce_requests, meter.ce_cost) == (1, Decimal("0.01"))
    assert (row.mean, row.lower_bound, row.upper_bound) == (Decimal("18234.5678901234"), Decimal("16011.2"),
                                                            Decimal("20457.9"))
    assert (row.period_start, row.period_end, row.metric) == (TODAY, dt.date(2025, 4, 1), "UNBLENDED_COST")


def _anomaly(anomaly_id: str, start: str, **impact: float) -> dict:
    return {"AnomalyId": anomaly_id, "AnomalyStartDate": start, "AnomalyEndDate": start,
            "DimensionValue": "Amazon Elastic Compute Cloud - Compute",
            "RootCauses": [{"Service": "Amazon Elastic Compute Cloud - Compute", "Region": "eu-west-1",
                            "LinkedAccount": "111122223333", "LinkedAccountName": "prod",
                            "UsageType": "EUW1-BoxUsage:m5.4xlarge"}],
            "AnomalyScore": {"MaxScore": 0.87, "CurrentScore": 0.41}, "Impact": impact,
            "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab",
            "Feedback": "YES"}


def test_anomalies_are_upserted_across_pages_and_a_throttled_page_is_not_asked_for_twice(session, ce, monkeypatch):
    # moto does not implement GetAnomalies
    monkeypatch.setattr(_plumbing, "THROTTLE_BACKOFF_SECONDS", (0.0, 0.0, 0.0))
    client, stubber, meter = ce
    interval = {"StartDate": "2024-12-10", "EndDate": "2025-03-10"}
    first = _anomaly("a-1", "2025-02-20", MaxImpact=120.5, TotalImpact=310.25, TotalActualSpend=410.25,
                     TotalExpectedSpend=100.0, TotalImpactPercentage=310.25)
    second = _anomaly("a-2", "2025-03-02", MaxImpact=40.0, TotalImpact=64.5)
    for _ in range(2):
        stubber.add_response("get_anomalies", {"Anomalies": [first], "NextPageToken": "page-2"},
                             {"DateInterval": interval})
        stubber.add_client_error("get_anomalies", "LimitExceededException", "Rate exceeded", 400)
        stubber.add_response("get_anomalies", {"Anomalies": [second]},
                             {"DateInterval": interval, "NextPageToken": "page-2"})

    outcome = cost_explorer.collect_anomalies(session, ce=client, payer_account_id="123456789012", today=TODAY)
    session.scalar(select(CostAnomaly).where(CostAnomaly.usage_date == dt.date(2025, 2, 20))).status = "acknowledged"
    again = cost_explorer.collect_anomalies(session, ce=client, payer_account_id="123456789012", today=TODAY)

    rows = {a.details["anomaly_id"]: a for a in session.scalars(select(CostAnomaly))}
    assert (outcome.rows, again.rows, sorted(rows)) == (2, 2, ["a-1", "a-2"])
    assert (meter.ce_requests, meter.ce_pages) == (6, 4)  # the throttled attempt is counted: an upper bound
    assert (rows["a-1"].actual_cost, rows["a-1"].expected_cost, rows["a-1"].status) == (
        Decimal("410.25"), Decimal("100.0"), "acknowledged")
    assert (rows["a-2"].actual_cost - rows["a-2"].expected_cost, rows["a-2"].source) == (Decimal("64.5"), "aws")
    assert rows["a-2"].usage_account_id == "111122223333" and rows["a-2"].service.startswith("Amazon Elastic")
