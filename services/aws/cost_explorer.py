"""Cost Explorer: daily costs by account and service and their breakdowns, forecasts and anomalies.

Costs (``GetCostAndUsage``), incrementally
    One profile is one payer: the account STS names for the profile's credentials. A payer's
    request grouped by ``LINKED_ACCOUNT`` covers every linked account, so the number of requests
    does not grow with the number of accounts (only the pages of a large answer do). Per billing
    period, in this order, each followed by its pages (``NextPageToken``):

    ==========================  ===============================================================
    GroupBy                     lands in
    ==========================  ===============================================================
    LINKED_ACCOUNT, SERVICE     ``cost_facts`` via ``ingest.replace_period`` (source
                                ``cost_explorer``, narrowed to the payer)
    LINKED_ACCOUNT, REGION      ``cost_dimension_daily``, dimension ``region``
    LINKED_ACCOUNT, USAGE_TYPE  dimension ``usage_type``
    LINKED_ACCOUNT, RECORD_TYPE dimension ``charge_category`` (Usage, Tax, Credit, ...)
    LINKED_ACCOUNT, TAG:<key>   dimension ``tag:<key>`` per configured tag key; Cost Explorer
                                answers ``<key>$<value>``, and ``<key>$`` (untagged) is stored
                                as the value ``""``
    ==========================  ===============================================================

    Daily granularity; metrics UnblendedCost, AmortizedCost, NetUnblendedCost and
    UsageQuantity, parsed from their text as ``Decimal`` and rounded half-even to the 11 places
    of the money columns. ``list_cost`` is the unblended cost (Cost Explorer has no list price).
    Cost Explorer cannot group by service and charge category at once, so facts from it carry
    charge category ``Usage``; the real split is the ``charge_category`` dimension.

    A period's requests are all made before anything of it is written, so a failure leaves the
    period as it was. Which months (:func:`plan_cost_periods`): the open month (up to yesterday;
    none on the 1st), and every month of the last ``history_months`` (the open month included;
    Cost Explorer keeps 14 months of daily data) that is not yet collected *and final*. A closed
    month is final once no day of it is ``Estimated`` any more; until then every run collects it
    again. The state lives in ``CollectionRun.details["periods"]`` of the profile's runs, with the
    dimensions collected, so that adding a tag key collects the final months again too. Newest
    months go first.

forecast
    ``GetCostForecast`` UNBLENDED_COST from today to the month's end (80 % interval) ->
    ``CostForecast`` (period_end exclusive, as Cost Explorer gives it); replaces the same payer,
    metric and period.
anomalies
    ``GetAnomalies`` of the last 90 days -> ``CostAnomaly`` (source ``aws``), matched on
    ``details["anomaly_id"]``; a status someone set is kept.

moto implements ``GetCostAndUsage`` only; tests hand the other functions stubbed clients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from models import AwsAccount, CostAnomaly, CostDimensionDaily, CostForecast
from services.aws._plumbing import (
    MONEY_QUANTUM,
    KindOutcome,
    as_date,
    as_decimal,
    as_money,
    call,
    error_code,
    jsonable,
    read_pages,
    table_of,
)
from services.costs import ingest
from services.costs.ingest import FactRow
from services.months import add_months, month_start

SOURCE = "cost_explorer"
COST_METRICS = ("UnblendedCost", "AmortizedCost", "NetUnblendedCost", "UsageQuantity")
ANOMALY_DAYS = 90

#: Breakdowns besides account x service: (dimension name, GroupBy key), in request order.
_DIMENSIONS = (("region", "REGION"), ("usage_type", "USAGE_TYPE"), ("charge_category", "RECORD_TYPE"))
_CHUNK = 5_000


@dataclass(frozen=True)
class CostPeriod:
    """One billing period to ask Cost Explorer for: ``start`` to ``end`` (exclusive)."""

    billing_period: dt.date
    start: dt.date
    end: dt.date
    is_open: bool



# -- costs ---------------------------------------------------------------------------------------


def cost_groupings(tag_keys: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """Return (dimension name, second GroupBy) of every request a billing period needs, in order."""
    groupings = [("service", {"Type": "DIMENSION", "Key": "SERVICE"})]
    groupings += [(name, {"Type": "DIMENSION", "Key": key}) for name, key in _DIMENSIONS]
    groupings += [(f"tag:{key}", {"Type": "TAG", "Key": key}) for key in tag_keys]
    return groupings


def plan_cost_periods(*, today: dt.date, history_months: int, states: Mapping[str, Mapping[str, Any]],
                      dimensions: Collection[str]) -> tuple[list[CostPeriod], list[dt.date]]:
    """Return the periods to collect, newest first, and those skipped as collected and final."""
    current = month_start(today)
    wanted, skipped = [], []
    for back in range(history_months):
        month = add_months(current, -back)
        if month == current:
            if today > current:  # nothing to ask for on the 1st: the day is not over
                wanted.append(CostPeriod(month, month, today, is_open=True))
            continue
        state = states.get(month.isoformat(), {})
        if state.get("final") and set(dimensions) <= set(state.get("dimensions", ())):
            skipped.append(month)
        else:
            wanted.append(CostPeriod(month, month, add_months(month, 1), is_open=False))
    return wanted, skipped


@dataclass
class CostAnswer:
    """One grouping's answer for one period, all pages merged."""

    groups: list[tuple[dt.date, list[str], Mapping[str, Any]]] = field(default_factory=list)
    is_estimated: bool = False
    account_names: dict[str, str] = field(default_factory=dict)


def get_cost_and_usage(ce: Any, *, period: CostPeriod, group_by: Mapping[str, str]) -> CostAnswer:
    """Ask for one grouping of one period, every page of it, and merge the pages."""
    answer = CostAnswer()
    params: dict[str, Any] = {
        "TimePeriod": {"Start": period.start.isoformat(), "End": period.end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(COST_METRICS),
        "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, dict(group_by)],
    }
    for page in read_pages(ce, "get_cost_and_usage", "NextPageToken", **params):
        for result in page.get("ResultsByTime", []):
            day = as_date(result["TimePeriod"]["Start"])
            answer.is_estimated |= bool(result.get("Estimated"))
            for group in result.get("Groups", []):
                answer.groups.append((day, list(group.get("Keys", [])), group.get("Metrics", {})))
        for attribute in page.get("DimensionValueAttributes", []):
            value = str(attribute.get("Value", ""))
            if value.isdigit():
                answer.account_names[value] = str(attribute.get("Attributes", {}).get("description", ""))
    return answer


def _amount(metrics: Mapping[str, Any], name: str) -> Decimal:
    return as_money(metrics.get(name, {}).get("Amount"))


def _currency(metrics: Mapping[str, Any]) -> str:
    return str(metrics.get("UnblendedCost", {}).get("Unit") or "USD")[:3]


def _quantity(metrics: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    metric = metrics.get("UsageQuantity")
    if not metric:
        return None, None
    unit = metric.get("Unit")
    return as_decimal(metric.get("Amount")), (str(unit)[:64] if unit and unit != "N/A" else None)


def _fact_rows(answer: CostAnswer, *, payer: str, period: dt.date) -> list[FactRow]:
    rows = []
    for day, keys, metrics in answer.groups:
        quantity, unit = _quantity(metrics)
        unblended = _amount(metrics, "UnblendedCost")
        rows.append(FactRow(
            usage_date=day, usage_account_id=keys[0][:32], service=(keys[1] if len(keys) > 1 else "")[:128],
            unblended_cost=unblended, amortized_cost=_amount(metrics, "AmortizedCost"),
            net_cost=_amount(metrics, "NetUnblendedCost"), list_cost=unblended, payer_account_id=payer,
            usage_quantity=quantity, usage_unit=unit, currency=_currency(metrics), billing_period=period,
        ))
    return rows


def _dimension_rows(answer: CostAnswer, *, dimension: str, payer: str, period: dt.date,
                    batch_id: int) -> list[dict[str, object]]:
    tag_prefix = dimension.removeprefix("tag:") + "$" if dimension.startswith("tag:") else None
    rows: list[dict[str, object]] = []
    for day, keys, metrics in answer.groups:
        value = keys[1] if len(keys) > 1 else ""
        if tag_prefix is not None:
            value = value.removeprefix(tag_prefix)  # "team$" is untagged: the value ""
        quantity, _unit = _quantity(metrics)
        rows.append({
            "usage_date": day, "billing_period": period, "payer_account_id": payer,
            "usage_account_id": keys[0][:32], "dimension": dimension, "value": value[:256],
            "unblended_cost": _amount(metrics, "UnblendedCost"), "amortized_cost": _amount(metrics, "AmortizedCost"),
            "net_cost": _amount(metrics, "NetUnblendedCost"),
            "usage_quantity": None if quantity is None else quantity.quantize(MONEY_QUANTUM, ROUND_HALF_EVEN),
            "currency": _currency(metrics), "source": SOURCE, "import_batch_id": batch_id,
        })
    return rows


def _remember_accounts(session: Session, *, names: Mapping[str, str], payer: str) -> None:
    """Record linked accounts Cost Explorer named, without overwriting what Organizations said."""
    if not names:
        return
    known = {a.account_id: a for a in session.scalars(select(AwsAccount).where(AwsAccount.account_id.in_(names)))}
    for account_id, name in sorted(names.items()):
        account = known.get(account_id)
        if account is None:
            session.add(AwsAccount(account_id=account_id, name=name[:128], payer_account_id=payer))
            continue
        if not account.name and name:
            account.name = name[:128]
        if account.payer_account_id is None:
            account.payer_account_id = payer


def write_cost_period(session: Session, *, period: CostPeriod, payer: str,
                     answers: Mapping[str, CostAnswer], actor_id: int | None) -> int:
    """Replace one period's Cost Explorer facts and breakdowns of one payer; return rows written."""
    facts = _fact_rows(answers["service"], payer=payer, period=period.billing_period)
    batch = ingest.replace_period(session, source=SOURCE, billing_period=period.billing_period, rows=facts,
                                  actor_id=actor_id, payer_account_ids={payer})
    dimensions = [d for d in answers if d != "service"]
    session.execute(delete(CostDimensionDaily).where(
        CostDimensionDaily.billing_period == period.billing_period, CostDimensionDaily.payer_account_id == payer,
        CostDimensionDaily.source == SOURCE, CostDimensionDaily.dimension.in_(dimensions)))
    written = len(facts)
    for dimension in dimensions:
        rows = _dimension_rows(answers[dimension], dimension=dimension, payer=payer,
                               period=period.billing_period, batch_id=batch.id)
        for start in range(0, len(rows), _CHUNK):
            session.execute(insert(table_of(CostDimensionDaily)), rows[start:start + _CHUNK])
        written += len(rows)
    names: dict[str, str] = {}
    for answer in answers.values():
        names.update(answer.account_names)
    _remember_accounts(session, names=names, payer=payer)
    return written



# -- forecast and anomalies (Cost Explorer APIs moto lacks) --------------------------------------


def collect_forecast(session: Session, *, ce: Any, profile_id: int | None, payer_account_id: str,
                     today: dt.date) -> KindOutcome:
    """Store Cost Explorer's unblended cost forecast from today to the month's end."""
    start, end = today, add_months(today, 1)
    try:
        answer = call(ce, "get_cost_forecast", TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
                      Metric="UNBLENDED_COST", Granularity="MONTHLY", PredictionIntervalLevel=80)
    except ClientError as exc:
        if error_code(exc) == "DataUnavailableException":
            return KindOutcome(0, "Cost Explorer has too little history to forecast this account yet.")
        raise
    results = answer.get("ForecastResultsByTime", [])
    lower = [r["PredictionIntervalLowerBound"] for r in results if r.get("PredictionIntervalLowerBound")]
    upper = [r["PredictionIntervalUpperBound"] for r in results if r.get("PredictionIntervalUpperBound")]
    total = answer.get("Total") or {}
    mean = as_money(total.get("Amount")) if total.get("Amount") else sum(
        (as_money(r.get("MeanValue")) for r in results), Decimal(0))
    session.execute(delete(CostForecast).where(
        CostForecast.payer_account_id == payer_account_id, CostForecast.metric == "UNBLENDED_COST",
        CostForecast.period_start == start, CostForecast.period_end == end))
    session.add(CostForecast(
        profile_id=profile_id, payer_account_id=payer_account_id, metric="UNBLENDED_COST", period_start=start,
        period_end=end, mean=mean, lower_bound=sum((as_money(v) for v in lower), Decimal(0)) if lower else None,
        upper_bound=sum((as_money(v) for v in upper), Decimal(0)) if upper else None,
        currency=str(total.get("Unit") or "USD")[:3]))
    return KindOutcome(1)


def _anomaly_fields(anomaly: Mapping[str, Any], *, payer: str) -> dict[str, Any]:
    impact = anomaly.get("Impact", {})
    total_impact = as_money(impact.get("TotalImpact", impact.get("MaxImpact")))
    actual = impact.get("TotalActualSpend")
    expected = impact.get("TotalExpectedSpend")
    actual_cost = as_money(actual) if actual is not None else None
    expected_cost = as_money(expected) if expected is not None else None
    if actual_cost is None:
        actual_cost = (expected_cost or Decimal(0)) + total_impact
    if expected_cost is None:
        expected_cost = actual_cost - total_impact
    causes = anomaly.get("RootCauses") or [{}]
    cause = causes[0]
    return {
        "usage_date": as_date(anomaly["AnomalyStartDate"]) if anomaly.get("AnomalyStartDate") else None,
        "usage_account_id": str(cause.get("LinkedAccount") or payer)[:32],
        "service": str(cause.get("Service") or anomaly.get("DimensionValue") or "")[:128],
        "expected_cost": expected_cost, "actual_cost": actual_cost,
        "details": jsonable({
            "anomaly_id": anomaly["AnomalyId"], "payer_account_id": payer,
            "end_date": anomaly.get("AnomalyEndDate"), "dimension_value": anomaly.get("DimensionValue"),
            "root_causes": anomaly.get("RootCauses", []), "score": anomaly.get("AnomalyScore", {}),
            "impact": impact, "monitor_arn": anomaly.get("MonitorArn"), "feedback": anomaly.get("Feedback"),
        }),
    }


def collect_anomalies(session: Session, *, ce: Any, payer_account_id: str, today: dt.date) -> KindOutcome:
    """Upsert the cost anomalies AWS detected in the last 90 days (source ``aws``)."""
    interval = {"StartDate": (today - dt.timedelta(days=ANOMALY_DAYS)).isoformat(), "EndDate": today.isoformat()}
    found = [_anomaly_fields(a, payer=payer_account_id)
             for page in read_pages(ce, "get_anomalies", "NextPageToken", DateInterval=interval)
             for a in page.get("Anomalies", [])]
    found = list({f["details"]["anomaly_id"]: f for f in found if f["usage_date"] is not None}.values())
    if not found:
        return KindOutcome(0)
    since = min(f["usage_date"] for f in found)
    existing = {str(a.details.get("anomaly_id")): a for a in session.scalars(
        select(CostAnomaly).where(CostAnomaly.source == "aws", CostAnomaly.usage_date >= since))}
    for fields in found:
        anomaly = existing.get(fields["details"]["anomaly_id"])
        if anomaly is None:
            session.add(CostAnomaly(source="aws", status="open", **fields))
        else:  # the status is the user's: keep it
            for name, value in fields.items():
                setattr(anomaly, name, value)
    return KindOutcome(len(found))
