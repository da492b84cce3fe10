"""Collect one AWS profile's data with boto3: costs, forecasts, anomalies, commitments, advice,
budgets, inventory, utilisation and account names.

``collect_profile`` is the entry point the job layer calls, once per profile; the ``collect_*``
functions below it do one kind each with the clients they are given (tests hand them stubbed
clients for the Cost Explorer APIs that moto lacks).

Transactions
    ``collect_profile`` commits as it goes: after creating its ``CollectionRun`` row (so that a
    running collection is visible), after every billing period of costs, after every other kind,
    and at the end. A failure rolls back only the step that failed; every step before it stays,
    and the step is named in the summary's ``errors``. Call it with a session that holds no
    uncommitted work of its own. Because finished periods are committed together with the note
    that they are final, a collection that stopped midway is resumed by simply running it again.

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
    period as it was. Which months: the open month (up to yesterday; none on the 1st), and every month of the last
    ``history_months`` (the open month included; Cost Explorer keeps 14 months of daily data)
    that is not yet collected *and final*. A closed month is final once no day of it is
    ``Estimated`` any more; until then every run collects it again. The state lives in
    ``CollectionRun.details["periods"]`` of the profile's runs, with the dimensions collected,
    so that adding a tag key collects the final months again too. Newest months go first.

    Profiles whose ``payer_profile_id`` names an active payer profile skip costs (with a note):
    their payer's collection already holds their costs, and collecting them twice would count
    them twice.

What Cost Explorer requests cost
    Every Cost Explorer request, a follow-up page included, costs USD 0.01. A ``RequestMeter``
    hooks botocore's ``before-call`` event of each client (Cost Explorer's event name is
    ``before-call.cost-explorer.<Operation>``: its service id is "Cost Explorer", so a
    ``before-call.ce.*`` hook would never fire). It counts API calls, so botocore's own retries
    of one call count once; requests that failed count too (an upper bound of the bill). A daily
    refresh with three tag keys is 7 requests per month collected: 14 (USD 0.14) while the
    previous month is still estimated, 7 after, pages aside. Other kinds: forecast 1, anomalies
    1 per page, commitments 7 (RI utilisation and coverage, SP utilisation and coverage, RI
    purchase advice for EC2 and RDS, SP purchase advice), rightsizing 1 per page.

Other kinds
    forecast     ``GetCostForecast`` UNBLENDED_COST from today to the month's end (80 %
                 interval) -> ``CostForecast`` (period_end exclusive, as Cost Explorer gives
                 it); replaces the same payer, metric and period.
    anomalies    ``GetAnomalies`` of the last 90 days -> ``CostAnomaly`` (source ``aws``), matched
                 on ``details["anomaly_id"]``; a status someone set is kept.
    commitments  RI and SP utilisation and coverage of the previous and the open month ->
                 ``CommitmentReport`` (replaced per payer, kind and period start); RI (EC2,
                 RDS) and Compute SP purchase advice -> ``Recommendation`` ``ri_purchase`` /
                 ``sp_purchase`` (replaced per profile).
    rightsizing  ``GetRightsizingRecommendation`` (EC2, same family) -> ``Recommendation``
                 ``rightsizing`` (replaced per profile).
    budgets      ``DescribeBudgets`` -> ``Budget`` (source ``aws``), upserted by name; a local
                 budget of the same name is left alone (noted). Only COST budgets with a
                 monthly, quarterly or annual period. Scope: LinkedAccount -> usage_account_id,
                 Service -> service, Region -> region, a team / cost-centre / environment tag ->
                 team / cost_center / environment, other tags -> ``tag:<key>``, other filters
                 -> ``aws:<filter>``; without an account filter, the profile's account
                 (``payer_account_id`` for a payer). AWS budgets that vanished are kept.
    inventory    per region, concurrently: EC2 instances, volumes, snapshots (owned by the
                 account), Elastic IPs, ELBv2 load balancers, RDS instances -> ``Resource``,
                 upserted by account + region + resource id. A resource that vanished is kept
                 with state ``deleted`` (its utilisation history stays; deleting the row would
                 cascade to it), but only when its region and type were listed without error.
                 ``monthly_cost`` is 0 on new rows and never overwritten: the collector does
                 not price resources.
    utilisation  CloudWatch ``GetMetricData``: daily average and maximum CPUUtilization of the
                 last 14 whole days, for the account's known EC2 and RDS instances ->
                 ``ResourceUtilisation``, upserted per resource and day.
    accounts     Organizations ``ListAccounts`` (payer profiles only) -> ``AwsAccount`` names,
                 emails and states; an account outside an organisation is noted, not an error.
                 The costs kind also records linked accounts Cost Explorer names.

Concurrency and retries
    Regions are worked on by a ``ThreadPoolExecutor(max_workers)``. Every client is created up
    front in the calling thread (creating clients from one boto3 session is not thread-safe;
    using a client from another thread is), and only the calling thread touches the database.
    Clients retry in botocore's adaptive mode, 8 attempts. Every call also goes through one
    helper that backs off and retries on throttling that outlasted those (Cost Explorer's
    ``LimitExceededException`` above all), going on from the page that failed rather than paying
    for the earlier pages again.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.paginate import TokenEncoder
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from models import (
    AwsAccount,
    AwsProfile,
    Budget,
    CollectionRun,
    CommitmentReport,
    CostAnomaly,
    CostDimensionDaily,
    CostForecast,
    Recommendation,
    Resource,
    ResourceUtilisation,
)
from models.base import utcnow
from services import audit
from services.aws import profiles
from services.aws.regions import AWS_REGIONS
from services.costs import ingest
from services.costs.ingest import FactRow
from services.errors import InvalidInput
from services.identity.permissions import JOB_ROLES, Actor, require_role
from services.months import add_months, month_start

logger = logging.getLogger(__name__)

#: Every kind, in the order a collection runs them (inventory before utilisation).
KINDS = ("accounts", "costs", "budgets", "inventory", "utilisation", "forecast", "anomalies",
         "commitments", "rightsizing")
SOURCE = "cost_explorer"
CE_REQUEST_PRICE = Decimal("0.01")
CE_REGION = "us-east-1"
DEFAULT_TAG_KEYS = ("team", "cost-center", "environment")
COST_METRICS = ("UnblendedCost", "AmortizedCost", "NetUnblendedCost", "UsageQuantity")
#: Cost Explorer keeps daily data for 14 months, the open one included.
MAX_HISTORY_MONTHS = 14
ANOMALY_DAYS = 90
UTILISATION_DAYS = 14
RI_SERVICES = ("Amazon Elastic Compute Cloud - Compute", "Amazon Relational Database Service")
CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=60)
THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "LimitExceededException",
                            "TooManyRequestsException", "RequestLimitExceeded"})
#: Waits after throttling that botocore's own retries did not absorb; then the call fails.
THROTTLE_BACKOFF_SECONDS: tuple[float, ...] = (2.0, 5.0, 15.0)

#: Breakdowns besides account x service: (dimension name, GroupBy key), in request order.
_DIMENSIONS = (("region", "REGION"), ("usage_type", "USAGE_TYPE"), ("charge_category", "RECORD_TYPE"))
_MONEY_QUANTUM = Decimal("1E-11")
_PERCENT_QUANTUM = Decimal("0.01")
_CHUNK = 5_000
_METRIC_QUERIES_PER_REQUEST = 500
_NO_END_YEAR = 2087  # AWS Budgets' "no end date" is 2087-06-15
_PAGE_TOKENS = ("NextPageToken", "NextToken")
_KIND_LABELS = {"accounts": "Accounts", "costs": "Costs", "budgets": "Budgets", "inventory": "Inventory",
                "utilisation": "Utilisation", "forecast": "Forecast", "anomalies": "Anomalies",
                "commitments": "Commitments", "rightsizing": "Rightsizing"}
_BUDGET_PERIODS = {"MONTHLY": "monthly", "QUARTERLY": "quarterly", "ANNUALLY": "annual"}
_ALLOCATION_TAGS = {**{k: "team" for k in ingest.TEAM_TAGS},
                    **{k: "cost_center" for k in ingest.COST_CENTER_TAGS},
                    **{k: "environment" for k in ingest.ENVIRONMENT_TAGS}}
_CPU_TARGETS = {"ec2_instance": ("AWS/EC2", "InstanceId"), "rds_instance": ("AWS/RDS", "DBInstanceIdentifier")}
_GONE_STATES = ("deleted", "terminated")

ProgressFn = Callable[[int, str], None]


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindOutcome:
    """What one kind wrote, and a remark for the user when it had nothing to do."""

    rows: int
    note: str | None = None


@dataclass(frozen=True)
class CollectionSummary:
    """What one collection did; also stored on its ``CollectionRun`` row."""

    run_id: int
    profile_id: int
    account_id: str | None
    #: succeeded (no errors), partial (some kinds failed or stopped midway), failed (nothing was collected)
    status: str
    kinds: tuple[str, ...]
    #: every billable Cost Explorer request, follow-up pages included
    ce_requests: int
    #: of those, the follow-up pages (requests carrying a NextPageToken)
    ce_pages: int
    ce_cost: Decimal
    other_requests: int
    rows_written: int
    rows_by_kind: Mapping[str, int] = field(default_factory=dict)
    #: kind -> words a user can act on
    errors: Mapping[str, str] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
    periods_collected: tuple[dt.date, ...] = ()
    periods_skipped: tuple[dt.date, ...] = ()
    seconds: float = 0.0

    @property
    def ce_requests_without_pages(self) -> int:
        """Return the Cost Explorer requests that were first pages."""
        return self.ce_requests - self.ce_pages


@dataclass(frozen=True)
class CostPeriod:
    """One billing period to ask Cost Explorer for: ``start`` to ``end`` (exclusive)."""

    billing_period: dt.date
    start: dt.date
    end: dt.date
    is_open: bool


# -- request accounting and calls -----------------------------------------------------------------


class RequestMeter:
    """Count the API requests made through the clients it is attached to; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ce_requests = 0
        self.ce_pages = 0
        self.other_requests = 0
        self.by_operation: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        """Hook the client's events so that each of its requests is counted; return the client."""
        events = client.meta.events
        events.register_first("before-parameter-build.*.*", self._note_page,
                              unique_id=f"finops-meter-page-{id(self)}")
        # register_first on the wildcard event: a handler that answers (botocore's Stubber) must
        # not run before the count.
        events.register_first("before-call.*.*", self._count, unique_id=f"finops-meter-call-{id(self)}")
        return client

    def add_other(self, count: int = 1) -> None:
        """Count requests made by clients the meter could not be attached to."""
        with self._lock:
            self.other_requests += count

    @staticmethod
    def _note_page(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["finops_is_page"] = any(params.get(token) for token in _PAGE_TOKENS)

    def _count(self, model: Any, context: Mapping[str, Any], **_: Any) -> None:
        prefix = model.service_model.endpoint_prefix
        with self._lock:
            self.by_operation[f"{prefix}:{model.name}"] += 1
            if prefix == "ce":
                self.ce_requests += 1
                self.ce_pages += bool(context.get("finops_is_page"))
            else:
                self.other_requests += 1

    @property
    def ce_cost(self) -> Decimal:
        """Return what the Cost Explorer requests counted so far cost, in USD."""
        return self.ce_requests * CE_REQUEST_PRICE


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _backoff(operation: str, exc: ClientError, attempt: int) -> None:
    """Wait before retrying a throttled call, or re-raise when it is not throttling or too often."""
    if _code(exc) not in THROTTLE_CODES or attempt >= len(THROTTLE_BACKOFF_SECONDS):
        raise exc
    delay = THROTTLE_BACKOFF_SECONDS[attempt]
    logger.warning("%s throttled (%s); retrying in %s s", operation, _code(exc), delay)
    time.sleep(delay)


def _call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """Call one operation, backing off after throttling that botocore's retries did not absorb."""
    attempt = 0
    while True:
        try:
            return dict(getattr(client, operation)(**params))
        except ClientError as exc:
            _backoff(operation, exc, attempt)
            attempt += 1


def _pages(client: Any, operation: str, page_param: str, *, page_field: str | None = None,
           **params: Any) -> Iterator[dict[str, Any]]:
    """Yield every page of an operation, through botocore's paginator where one exists.

    ``page_param`` names the request's page token, ``page_field`` the answer's when it differs.
    After throttling, wait and go on from the page that failed: pages already read are not asked
    for again (each Cost Explorer page costs money).
    """
    page_field = page_field or page_param
    if not client.can_paginate(operation):
        next_token: str | None = None
        while True:
            page = _call(client, operation, **params, **({page_param: next_token} if next_token else {}))
            yield page
            next_token = page.get(page_field)
            if not next_token:
                return
    paginator = client.get_paginator(operation)
    resume: str | None = None
    attempt = 0
    while True:
        config = {"StartingToken": TokenEncoder().encode({page_param: resume})} if resume else {}
        try:
            for page in paginator.paginate(**params, PaginationConfig=config):
                yield page
                resume = page.get(page_field)
                attempt = 0
            return
        except ClientError as exc:
            _backoff(operation, exc, attempt)
            attempt += 1


# -- small conversions -------------------------------------------------------------------------


def _decimal(value: object) -> Decimal:
    """Parse a figure from its text (a JSON double by its shortest round-trip text)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"AWS sent a figure that is not a number: {value!r}") from exc


def _money(value: object) -> Decimal:
    return _decimal(value).quantize(_MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def _percent(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    return _decimal(value).quantize(_PERCENT_QUANTUM, rounding=ROUND_HALF_EVEN)


def _day(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _jsonable(value: object) -> Any:
    """Return plain JSON data (timestamps become text) for a JSON column."""
    return json.loads(json.dumps(value, default=str))


def _tags(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or () if "Key" in t}


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


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
class _CostAnswer:
    """One grouping's answer for one period, all pages merged."""

    groups: list[tuple[dt.date, list[str], Mapping[str, Any]]] = field(default_factory=list)
    is_estimated: bool = False
    account_names: dict[str, str] = field(default_factory=dict)


def _get_cost_and_usage(ce: Any, *, period: CostPeriod, group_by: Mapping[str, str]) -> _CostAnswer:
    answer = _CostAnswer()
    params: dict[str, Any] = {
        "TimePeriod": {"Start": period.start.isoformat(), "End": period.end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(COST_METRICS),
        "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, dict(group_by)],
    }
    for page in _pages(ce, "get_cost_and_usage", "NextPageToken", **params):
        for result in page.get("ResultsByTime", []):
            day = _day(result["TimePeriod"]["Start"])
            answer.is_estimated |= bool(result.get("Estimated"))
            for group in result.get("Groups", []):
                answer.groups.append((day, list(group.get("Keys", [])), group.get("Metrics", {})))
        for attribute in page.get("DimensionValueAttributes", []):
            value = str(attribute.get("Value", ""))
            if value.isdigit():
                answer.account_names[value] = str(attribute.get("Attributes", {}).get("description", ""))
    return answer


def _amount(metrics: Mapping[str, Any], name: str) -> Decimal:
    return _money(metrics.get(name, {}).get("Amount"))


def _currency(metrics: Mapping[str, Any]) -> str:
    return str(metrics.get("UnblendedCost", {}).get("Unit") or "USD")[:3]


def _quantity(metrics: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    metric = metrics.get("UsageQuantity")
    if not metric:
        return None, None
    unit = metric.get("Unit")
    return _decimal(metric.get("Amount")), (str(unit)[:64] if unit and unit != "N/A" else None)


def _fact_rows(answer: _CostAnswer, *, payer: str, period: dt.date) -> list[FactRow]:
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


def _dimension_rows(answer: _CostAnswer, *, dimension: str, payer: str, period: dt.date,
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
            "usage_quantity": None if quantity is None else quantity.quantize(_MONEY_QUANTUM, ROUND_HALF_EVEN),
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


def _write_cost_period(session: Session, *, period: CostPeriod, payer: str,
                      answers: Mapping[str, _CostAnswer], actor_id: int | None) -> int:
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
            session.execute(insert(_table(CostDimensionDaily)), rows[start:start + _CHUNK])
        written += len(rows)
    names: dict[str, str] = {}
    for answer in answers.values():
        names.update(answer.account_names)
    _remember_accounts(session, names=names, payer=payer)
    return written


# -- forecast, anomalies, commitments, advice (Cost Explorer APIs moto lacks) ----------------------


def collect_forecast(session: Session, *, ce: Any, profile_id: int | None, payer_account_id: str,
                     today: dt.date) -> KindOutcome:
    """Store Cost Explorer's unblended cost forecast from today to the month's end."""
    start, end = today, add_months(today, 1)
    try:
        answer = _call(ce, "get_cost_forecast", TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
                       Metric="UNBLENDED_COST", Granularity="MONTHLY", PredictionIntervalLevel=80)
    except ClientError as exc:
        if _code(exc) == "DataUnavailableException":
            return KindOutcome(0, "Cost Explorer has too little history to forecast this account yet.")
        raise
    results = answer.get("ForecastResultsByTime", [])
    lower = [r["PredictionIntervalLowerBound"] for r in results if r.get("PredictionIntervalLowerBound")]
    upper = [r["PredictionIntervalUpperBound"] for r in results if r.get("PredictionIntervalUpperBound")]
    total = answer.get("Total") or {}
    mean = _money(total.get("Amount")) if total.get("Amount") else sum(
        (_money(r.get("MeanValue")) for r in results), Decimal(0))
    session.execute(delete(CostForecast).where(
        CostForecast.payer_account_id == payer_account_id, CostForecast.metric == "UNBLENDED_COST",
        CostForecast.period_start == start, CostForecast.period_end == end))
    session.add(CostForecast(
        profile_id=profile_id, payer_account_id=payer_account_id, metric="UNBLENDED_COST", period_start=start,
        period_end=end, mean=mean, lower_bound=sum((_money(v) for v in lower), Decimal(0)) if lower else None,
        upper_bound=sum((_money(v) for v in upper), Decimal(0)) if upper else None,
        currency=str(total.get("Unit") or "USD")[:3]))
    return KindOutcome(1)


def _anomaly_fields(anomaly: Mapping[str, Any], *, payer: str) -> dict[str, Any]:
    impact = anomaly.get("Impact", {})
    total_impact = _money(impact.get("TotalImpact", impact.get("MaxImpact")))
    actual = impact.get("TotalActualSpend")
    expected = impact.get("TotalExpectedSpend")
    actual_cost = _money(actual) if actual is not None else None
    expected_cost = _money(expected) if expected is not None else None
    if actual_cost is None:
        actual_cost = (expected_cost or Decimal(0)) + total_impact
    if expected_cost is None:
        expected_cost = actual_cost - total_impact
    causes = anomaly.get("RootCauses") or [{}]
    cause = causes[0]
    return {
        "usage_date": _day(anomaly["AnomalyStartDate"]) if anomaly.get("AnomalyStartDate") else None,
        "usage_account_id": str(cause.get("LinkedAccount") or payer)[:32],
        "service": str(cause.get("Service") or anomaly.get("DimensionValue") or "")[:128],
        "expected_cost": expected_cost, "actual_cost": actual_cost,
        "details": _jsonable({
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
             for page in _pages(ce, "get_anomalies", "NextPageToken", DateInterval=interval)
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


def _commitment_reports(ce: Any, *, start: dt.date, end: dt.date) -> list[tuple[str, dict[str, Any], Any, Any]]:
    """Return (kind, time period, percentage, data) of RI and SP utilisation and coverage."""
    period = {"Start": start.isoformat(), "End": end.isoformat()}
    reports: list[tuple[str, dict[str, Any], Any, Any]] = []
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("ri_utilisation", "get_reservation_utilization", "NextPageToken", {}),
        ("ri_coverage", "get_reservation_coverage", "NextPageToken", {}),
        ("sp_utilisation", "get_savings_plans_utilization", "", {}),
        ("sp_coverage", "get_savings_plans_coverage", "NextToken", {}),
    ]
    for kind, operation, token, extra in calls:
        try:
            if token:
                pages = list(_pages(ce, operation, token, TimePeriod=period, Granularity="MONTHLY", **extra))
            else:
                pages = [_call(ce, operation, TimePeriod=period, Granularity="MONTHLY", **extra)]
        except ClientError as exc:
            if _code(exc) == "DataUnavailableException":  # no reservations or savings plans
                continue
            raise
        for page in pages:
            if kind == "ri_utilisation":
                reports += [(kind, i["TimePeriod"], i.get("Total", {}).get("UtilizationPercentage"), i.get("Total", {}))
                            for i in page.get("UtilizationsByTime", [])]
            elif kind == "ri_coverage":
                reports += [(kind, i["TimePeriod"],
                             i.get("Total", {}).get("CoverageHours", {}).get("CoverageHoursPercentage"),
                             i.get("Total", {})) for i in page.get("CoveragesByTime", [])]
            elif kind == "sp_utilisation":
                reports += [(kind, i["TimePeriod"], i.get("Utilization", {}).get("UtilizationPercentage"),
                             {k: v for k, v in i.items() if k != "TimePeriod"})
                            for i in page.get("SavingsPlansUtilizationsByTime", [])]
            else:
                reports += [(kind, i["TimePeriod"], i.get("Coverage", {}).get("CoveragePercentage"),
                             {k: v for k, v in i.items() if k != "TimePeriod"})
                            for i in page.get("SavingsPlansCoverages", [])]
    return reports


def _instance_summary(details: Mapping[str, Any]) -> tuple[str, str]:
    """Return (instance type, region) from a reservation recommendation's InstanceDetails."""
    for value in details.values():
        if isinstance(value, Mapping):
            size = value.get("InstanceType") or value.get("NodeType") or value.get("InstanceClass") or ""
            return str(size), str(value.get("Region", ""))
    return "", ""


def _purchase_advice(ce: Any, *, profile_id: int | None, is_payer: bool) -> list[Recommendation]:
    scope = "PAYER" if is_payer else "LINKED"
    advice: list[Recommendation] = []
    for service in RI_SERVICES:
        for page in _pages(ce, "get_reservation_purchase_recommendation", "NextPageToken", Service=service,
                           AccountScope=scope, LookbackPeriodInDays="THIRTY_DAYS", TermInYears="ONE_YEAR",
                           PaymentOption="NO_UPFRONT"):
            for recommendation in page.get("Recommendations", []):
                for detail in recommendation.get("RecommendationDetails", []):
                    size, region = _instance_summary(detail.get("InstanceDetails", {}))
                    count = detail.get("RecommendedNumberOfInstancesToPurchase", "?")
                    advice.append(Recommendation(
                        profile_id=profile_id, kind="ri_purchase", source="aws",
                        usage_account_id=detail.get("AccountId"),
                        summary=f"Reserve {count} x {size} ({service}, {region}) for 1 year, no upfront"[:512],
                        estimated_monthly_savings=_money(detail.get("EstimatedMonthlySavingsAmount")),
                        currency=str(detail.get("CurrencyCode") or "USD")[:3],
                        details=_jsonable({"service": service, "term": "ONE_YEAR", "payment_option": "NO_UPFRONT",
                                           **detail})))
    for page in _pages(ce, "get_savings_plans_purchase_recommendation", "NextPageToken",
                       SavingsPlansType="COMPUTE_SP", TermInYears="ONE_YEAR", PaymentOption="NO_UPFRONT",
                       LookbackPeriodInDays="THIRTY_DAYS", AccountScope=scope):
        plan = page.get("SavingsPlansPurchaseRecommendation", {})
        for detail in plan.get("SavingsPlansPurchaseRecommendationDetails", []):
            hourly = detail.get("HourlyCommitmentToPurchase", "?")
            advice.append(Recommendation(
                profile_id=profile_id, kind="sp_purchase", source="aws", usage_account_id=detail.get("AccountId"),
                summary=f"Commit USD {hourly} an hour to a 1-year Compute Savings Plan, no upfront"[:512],
                estimated_monthly_savings=_money(detail.get("EstimatedMonthlySavingsAmount")),
                currency=str(detail.get("CurrencyCode") or "USD")[:3],
                details=_jsonable({"savings_plans_type": "COMPUTE_SP", "term": "ONE_YEAR",
                                   "payment_option": "NO_UPFRONT", **detail})))
    return advice


def _replace_recommendations(session: Session, *, profile_id: int | None, kinds: Collection[str],
                             rows: Sequence[Recommendation]) -> None:
    session.execute(delete(Recommendation).where(
        Recommendation.profile_id == profile_id, Recommendation.source == "aws", Recommendation.kind.in_(kinds)))
    session.add_all(rows)


def collect_commitments(session: Session, *, ce: Any, profile_id: int | None, payer_account_id: str,
                        today: dt.date, is_payer: bool = True) -> KindOutcome:
    """Store RI and SP utilisation and coverage, and AWS's RI and SP purchase advice."""
    start = add_months(today, -1)
    reports = _commitment_reports(ce, start=start, end=today)
    advice = _purchase_advice(ce, profile_id=profile_id, is_payer=is_payer)
    for kind, period, percentage, data in reports:
        period_start = _day(period["Start"])
        session.execute(delete(CommitmentReport).where(
            CommitmentReport.payer_account_id == payer_account_id, CommitmentReport.kind == kind,
            CommitmentReport.period_start == period_start))
        session.add(CommitmentReport(
            profile_id=profile_id, payer_account_id=payer_account_id, kind=kind, period_start=period_start,
            period_end=_day(period["End"]), percentage=_percent(percentage), data=_jsonable(data)))
    _replace_recommendations(session, profile_id=profile_id, kinds=("ri_purchase", "sp_purchase"), rows=advice)
    note = None if reports or advice else "AWS reports no reservations, savings plans or purchase advice."
    return KindOutcome(len(reports) + len(advice), note)


def _rightsizing(item: Mapping[str, Any], *, profile_id: int | None) -> Recommendation:
    current = item.get("CurrentInstance", {})
    resource_id = str(current.get("ResourceId", ""))
    size = current.get("ResourceDetails", {}).get("EC2ResourceDetails", {}).get("InstanceType", "")
    if item.get("RightsizingType") == "TERMINATE":
        detail = item.get("TerminateRecommendationDetail", {})
        savings, currency = detail.get("EstimatedMonthlySavings"), detail.get("CurrencyCode")
        summary = f"Terminate {resource_id} ({size}): it is idle"
    else:
        targets = item.get("ModifyRecommendationDetail", {}).get("TargetInstances", [])
        target = next((t for t in targets if t.get("DefaultTargetInstance")), targets[0] if targets else {})
        savings, currency = target.get("EstimatedMonthlySavings"), target.get("CurrencyCode")
        new_size = target.get("ResourceDetails", {}).get("EC2ResourceDetails", {}).get("InstanceType", "?")
        summary = f"Resize {resource_id} from {size} to {new_size}"
    return Recommendation(
        profile_id=profile_id, kind="rightsizing", source="aws", usage_account_id=item.get("AccountId"),
        resource_id=resource_id or None, summary=summary[:512], estimated_monthly_savings=_money(savings),
        currency=str(currency or current.get("CurrencyCode") or "USD")[:3], details=_jsonable(item))


def collect_rightsizing(session: Session, *, ce: Any, profile_id: int | None) -> KindOutcome:
    """Replace the profile's AWS rightsizing advice for EC2 (same instance family, savings net of commitments)."""
    advice = [_rightsizing(item, profile_id=profile_id)
              for page in _pages(ce, "get_rightsizing_recommendation", "NextPageToken", Service="AmazonEC2",
                                 Configuration={"RecommendationTarget": "SAME_INSTANCE_FAMILY",
                                                "BenefitsConsidered": True})
              for item in page.get("RightsizingRecommendations", [])]
    _replace_recommendations(session, profile_id=profile_id, kinds=("rightsizing",), rows=advice)
    return KindOutcome(len(advice))


# -- accounts and budgets ------------------------------------------------------------------------


def collect_accounts(session: Session, *, organizations: Any, payer_account_id: str) -> KindOutcome:
    """Upsert the organisation's accounts (names, emails, states) under the payer."""
    try:
        accounts = [a for page in _pages(organizations, "list_accounts", "NextToken") for a in page.get("Accounts", [])]
    except ClientError as exc:
        if _code(exc) == "AWSOrganizationsNotInUseException":
            return KindOutcome(0, "This account is not in an AWS organisation: account names come from "
                                  "Cost Explorer instead.")
        raise
    known = {a.account_id: a for a in session.scalars(
        select(AwsAccount).where(AwsAccount.account_id.in_([str(a["Id"]) for a in accounts])))}
    for item in accounts:
        account = known.get(str(item["Id"])) or AwsAccount(account_id=str(item["Id"]))
        if account.account_id not in known:
            session.add(account)
        account.name = str(item.get("Name", ""))[:128]
        account.email = item.get("Email")
        account.status = str(item.get("State") or item.get("Status") or "ACTIVE")[:16]
        account.payer_account_id = payer_account_id
    return KindOutcome(len(accounts))


def _budget_scope(filters: Mapping[str, Sequence[str]], *, account_id: str, is_payer: bool) -> dict[str, list[str]]:
    scope: dict[str, list[str]] = {}
    for name, values in filters.items():
        if name == "LinkedAccount":
            scope["usage_account_id"] = list(values)
        elif name in ("Service", "Region"):
            scope[name.lower()] = list(values)
        elif name == "TagKeyValue":
            for text in values:
                key, _, value = text.removeprefix("user:").partition("$")
                scope.setdefault(_ALLOCATION_TAGS.get(key, f"tag:{key}"), []).append(value)
        else:
            scope[f"aws:{name}"] = list(values)
    if "usage_account_id" not in scope:
        scope["payer_account_id" if is_payer else "usage_account_id"] = [account_id]
    return scope


def collect_budgets(session: Session, *, budgets: Any, account_id: str, is_payer: bool,
                    today: dt.date) -> KindOutcome:
    """Upsert the account's AWS cost budgets by name (source ``aws``)."""
    try:
        found = [b for page in _pages(budgets, "describe_budgets", "NextToken", AccountId=account_id)
                 for b in page.get("Budgets", [])]
    except ClientError as exc:
        if _code(exc) != "NotFoundException":  # an account without budgets
            raise
        found = []
    skipped: list[str] = []
    written = 0
    for item in found:
        name = str(item["BudgetName"])[:128]
        period = _BUDGET_PERIODS.get(str(item.get("TimeUnit")))
        limit = item.get("BudgetLimit")
        if item.get("BudgetType") != "COST" or period is None or not limit:
            skipped.append(f"{name} (not a monthly, quarterly or annual cost budget)")
            continue
        budget = session.scalar(select(Budget).where(Budget.name == name))
        if budget is not None and budget.source != "aws":
            skipped.append(f"{name} (a local budget has that name)")
            continue
        if budget is None:
            budget = Budget(name=name, source="aws")
            session.add(budget)
        time_period = item.get("TimePeriod", {})
        ends = _day(time_period["End"]) if time_period.get("End") else None
        budget.period = period
        budget.amount = _money(limit["Amount"])
        budget.currency = str(limit.get("Unit") or "USD")[:3]
        budget.scope = _budget_scope(item.get("CostFilters", {}), account_id=account_id, is_payer=is_payer)
        budget.starts_on = _day(time_period["Start"]) if time_period.get("Start") else today
        budget.ends_on = None if ends is None or ends.year >= _NO_END_YEAR else ends
        written += 1
    note = ("Not imported: " + "; ".join(skipped))[:500] if skipped else None
    return KindOutcome(written, note)


# -- inventory and utilisation -------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    region: str
    resource_type: str
    resource_id: str
    name: str
    size: str
    state: str
    tags: dict[str, str]
    attributes: dict[str, object]
    launched_on: dt.date | None


@dataclass
class _RegionScan:
    region: str
    found: list[_Found] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    errors: dict[str, Exception] = field(default_factory=dict)


def _instances(ec2: Any, region: str) -> list[_Found]:
    found = []
    for page in _pages(ec2, "describe_instances", "NextToken"):
        for reservation in page.get("Reservations", []):
            for i in reservation.get("Instances", []):
                tags = _tags(i.get("Tags"))
                found.append(_Found(
                    region, "ec2_instance", i["InstanceId"], tags.get("Name", ""), i.get("InstanceType", ""),
                    i.get("State", {}).get("Name", ""), tags,
                    {"instance_type": i.get("InstanceType"), "platform": i.get("PlatformDetails") or "Linux/UNIX",
                     "availability_zone": i.get("Placement", {}).get("AvailabilityZone"),
                     "lifecycle": i.get("InstanceLifecycle", "on-demand"), "vpc_id": i.get("VpcId")},
                    _day(i["LaunchTime"]) if i.get("LaunchTime") else None))
    return found


def _volumes(ec2: Any, region: str) -> list[_Found]:
    found = []
    for page in _pages(ec2, "describe_volumes", "NextToken"):
        for v in page.get("Volumes", []):
            tags = _tags(v.get("Tags"))
            attached = next((a.get("InstanceId") for a in v.get("Attachments", []) if a.get("InstanceId")), None)
            found.append(_Found(
                region, "ebs_volume", v["VolumeId"], tags.get("Name", ""), v.get("VolumeType", ""), v.get("State", ""),
                tags, {"volume_type": v.get("VolumeType"), "size_gib": v.get("Size"), "iops": v.get("Iops"),
                       "attached_instance_id": attached, "availability_zone": v.get("AvailabilityZone"),
                       "encrypted": v.get("Encrypted")},
                _day(v["CreateTime"]) if v.get("CreateTime") else None))
    return found


def _snapshots(ec2: Any, region: str, account_id: str) -> list[_Found]:
    found = []
    # The owner-id filter repeats "self" for moto, which answers OwnerIds=["self"] with every
    # owner's snapshots (those behind its public AMIs too); AWS gives the same answer either way.
    for page in _pages(ec2, "describe_snapshots", "NextToken", OwnerIds=["self"],
                       Filters=[{"Name": "owner-id", "Values": [account_id]}]):
        for s in page.get("Snapshots", []):
            if s.get("OwnerId") not in (None, account_id):
                continue
            tags = _tags(s.get("Tags"))
            found.append(_Found(
                region, "ebs_snapshot", s["SnapshotId"], tags.get("Name", ""), f"{s.get('VolumeSize', 0)} GiB",
                s.get("State", ""), tags,
                {"size_gib": s.get("VolumeSize"), "volume_id": s.get("VolumeId"),
                 "start_time": str(s.get("StartTime", "")), "description": s.get("Description", ""),
                 "storage_tier": s.get("StorageTier")},
                _day(s["StartTime"]) if s.get("StartTime") else None))
    return found


def _addresses(ec2: Any, region: str) -> list[_Found]:
    found = []
    for a in _call(ec2, "describe_addresses").get("Addresses", []):  # no paginator: one answer
        tags = _tags(a.get("Tags"))
        instance_id = a.get("InstanceId") or None
        associated = bool(a.get("AssociationId") or instance_id or a.get("NetworkInterfaceId"))
        found.append(_Found(
            region, "elastic_ip", a.get("AllocationId") or a["PublicIp"], tags.get("Name", ""), "",
            "associated" if associated else "unassociated", tags,
            {"public_ip": a.get("PublicIp"), "instance_id": instance_id,
             "association_id": a.get("AssociationId") or None, "domain": a.get("Domain")},
            None))
    return found


def _load_balancers(elbv2: Any, region: str) -> list[_Found]:
    balancers = [lb for page in _pages(elbv2, "describe_load_balancers", "Marker", page_field="NextMarker")
                 for lb in page.get("LoadBalancers", [])]
    tags: dict[str, dict[str, str]] = {}
    arns = [lb["LoadBalancerArn"] for lb in balancers]
    for start in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs at most
        described = _call(elbv2, "describe_tags", ResourceArns=arns[start:start + 20])
        for description in described.get("TagDescriptions", []):
            tags[description["ResourceArn"]] = _tags(description.get("Tags"))
    return [_Found(
        region, "load_balancer", lb["LoadBalancerArn"], lb.get("LoadBalancerName", ""), lb.get("Type", ""),
        lb.get("State", {}).get("Code", ""), tags.get(lb["LoadBalancerArn"], {}),
        {"type": lb.get("Type"), "scheme": lb.get("Scheme"), "dns_name": lb.get("DNSName"), "vpc_id": lb.get("VpcId")},
        _day(lb["CreatedTime"]) if lb.get("CreatedTime") else None) for lb in balancers]


def _databases(rds: Any, region: str) -> list[_Found]:
    found = []
    for page in _pages(rds, "describe_db_instances", "Marker"):
        for d in page.get("DBInstances", []):
            found.append(_Found(
                region, "rds_instance", d["DBInstanceIdentifier"], d["DBInstanceIdentifier"],
                d.get("DBInstanceClass", ""), d.get("DBInstanceStatus", ""), _tags(d.get("TagList")),
                {"db_instance_class": d.get("DBInstanceClass"), "engine": d.get("Engine"),
                 "engine_version": d.get("EngineVersion"), "multi_az": d.get("MultiAZ"),
                 "allocated_storage_gib": d.get("AllocatedStorage"), "storage_type": d.get("StorageType"),
                 "availability_zone": d.get("AvailabilityZone"), "arn": d.get("DBInstanceArn")},
                _day(d["InstanceCreateTime"]) if d.get("InstanceCreateTime") else None))
    return found


def _scan_region(region: str, clients: Mapping[str, Any], account_id: str) -> _RegionScan:
    """List one region's resources (runs in a worker thread: AWS only, no database)."""
    scan = _RegionScan(region)
    listers: list[tuple[str, Callable[[], list[_Found]]]] = [
        ("ec2_instance", lambda: _instances(clients["ec2"], region)),
        ("ebs_volume", lambda: _volumes(clients["ec2"], region)),
        ("ebs_snapshot", lambda: _snapshots(clients["ec2"], region, account_id)),
        ("elastic_ip", lambda: _addresses(clients["ec2"], region)),
        ("load_balancer", lambda: _load_balancers(clients["elbv2"], region)),
        ("rds_instance", lambda: _databases(clients["rds"], region)),
    ]
    for resource_type, lister in listers:
        try:
            scan.found.extend(lister())
            scan.listed.add(resource_type)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("listing %s in %s failed: %s", resource_type, region, exc)
            scan.errors[resource_type] = exc
    return scan


def _write_resources(session: Session, *, account_id: str, scans: Sequence[_RegionScan], today: dt.date) -> int:
    regions = [scan.region for scan in scans]
    existing = {(r.region, r.resource_id): r for r in session.scalars(
        select(Resource).where(Resource.usage_account_id == account_id, Resource.region.in_(regions)))}
    seen: set[tuple[str, str]] = set()
    written = 0
    for scan in scans:
        for item in scan.found:
            key = (item.region, item.resource_id[:256])
            seen.add(key)
            resource = existing.get(key)
            if resource is None:
                resource = Resource(usage_account_id=account_id, region=item.region, resource_id=key[1],
                                    monthly_cost=Decimal(0))
                session.add(resource)
                existing[key] = resource
            resource.resource_type = item.resource_type
            resource.name, resource.size, resource.state = item.name[:256], item.size[:64], item.state[:32]
            resource.tags = item.tags
            resource.attributes = _jsonable(item.attributes)
            resource.launched_on = item.launched_on
            resource.source = "collector"
            written += 1
    listed = {(scan.region, t) for scan in scans for t in scan.listed}
    for key, resource in existing.items():
        if (key not in seen and resource.source == "collector" and resource.state != "deleted"
                and (resource.region, resource.resource_type) in listed):
            resource.state = "deleted"
            resource.attributes = {**resource.attributes, "deleted_seen_on": today.isoformat()}
            written += 1
    return written


def _cpu_queries(targets: Sequence[tuple[int, str, str]]) -> list[dict[str, Any]]:
    queries = []
    for index, (_pk, resource_type, resource_id) in enumerate(targets):
        namespace, dimension = _CPU_TARGETS[resource_type]
        metric = {"Namespace": namespace, "MetricName": "CPUUtilization",
                  "Dimensions": [{"Name": dimension, "Value": resource_id}]}
        for prefix, stat in (("a", "Average"), ("m", "Maximum")):
            queries.append({"Id": f"{prefix}{index}", "ReturnData": True,
                            "MetricStat": {"Metric": metric, "Period": 86_400, "Stat": stat}})
    return queries


def _read_cpu(cloudwatch: Any, targets: Sequence[tuple[int, str, str]], *, start: dt.datetime,
              end: dt.datetime) -> list[tuple[int, dt.date, str, Decimal]]:
    """Return (resource pk, day, "a" or "m", value) for the targets (runs in a worker thread)."""
    per_request = _METRIC_QUERIES_PER_REQUEST // 2
    values: list[tuple[int, dt.date, str, Decimal]] = []
    for offset in range(0, len(targets), per_request):
        batch = targets[offset:offset + per_request]
        for page in _pages(cloudwatch, "get_metric_data", "NextToken", MetricDataQueries=_cpu_queries(batch),
                           StartTime=start, EndTime=end, ScanBy="TimestampAscending"):
            for result in page.get("MetricDataResults", []):
                stat, index = result["Id"][0], int(result["Id"][1:])
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    values.append((batch[index][0], _day(stamp), stat, _percent(value) or Decimal(0)))
    return values


# -- the run -------------------------------------------------------------------------------------


def _explain(kind: str, exc: Exception, *, region: str) -> str:
    """Say what went wrong with one kind in words a user can act on."""
    label = _KIND_LABELS[kind]
    if isinstance(exc, ClientError):
        code = _code(exc)
        operation = exc.operation_name
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if kind == "rightsizing" and "opt-in" in message.lower():
            return (f"{label}: rightsizing advice is off for this account. Turn it on in the Cost Explorer "
                    "preferences of the management account; AWS then needs about a day.")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"):
            return (f"{label}: the profile may not call {operation}. Allow it in the IAM policy of the "
                    "profile's user or role (the read-only ViewBilling and ReadOnlyAccess policies cover it).")
        if code in THROTTLE_CODES:
            return f"{label}: AWS kept throttling {operation} for this account. Try again in a few minutes."
        if code == "OptInRequired":
            return f"{label}: the account has not enabled region {region}. Remove it from the profile's regions."
        if code in ("DataUnavailableException", "BillExpirationException"):
            return f"{label}: Cost Explorer has no data for this yet. Enable Cost Explorer and wait a day."
        if code == "RequestChangedException":
            return f"{label}: Cost Explorer's data changed while it was being read. Run the collection again."
        if code in ("ValidationException", "InvalidParameterValue") and message:
            return f"{label}: AWS refused {operation}: {message[:300]}"
        if status >= 500:
            return f"{label}: AWS could not answer {operation} (HTTP {status}). Try again later."
        return f"{label}: {profiles.explain(exc, region=region)}"
    if isinstance(exc, EndpointConnectionError | NoCredentialsError):
        return f"{label}: {profiles.explain(exc, region=region)}"
    if isinstance(exc, BotoCoreError):
        return f"{label}: the request to AWS failed ({type(exc).__name__}). Try again later."
    return f"{label}: the collection failed unexpectedly ({type(exc).__name__}); the server log has the details."


class _Run:
    """One collection of one profile: clients, counters, progress and the run row."""

    def __init__(self, session: Session, *, actor: Actor, profile: AwsProfile, run: CollectionRun,
                 boto: Any, meter: RequestMeter, config: Config, endpoint_url: str | None, today: dt.date,
                 regions: Sequence[str], tag_keys: Sequence[str], history_months: int, max_workers: int,
                 on_progress: ProgressFn | None) -> None:
        self.session, self.actor, self.profile, self.run = session, actor, profile, run
        self.profile_id = profile.id
        self.is_payer = profile.is_payer
        self.boto, self.meter, self.config, self.endpoint_url = boto, meter, config, endpoint_url
        self.today, self.regions, self.tag_keys = today, list(regions), list(tag_keys)
        self.history_months, self.max_workers, self.on_progress = history_months, max_workers, on_progress
        self.account_id = ""
        self.rows: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self.period_states: dict[str, dict[str, Any]] = {}
        self.collected: list[dt.date] = []
        self.skipped: list[dt.date] = []
        self.steps_total = 1
        self.steps_done = 0

    # clients are made here, in the calling thread only
    def client(self, service: str, region: str = CE_REGION) -> Any:
        return self.meter.attach(self.boto.client(service, region_name=region, endpoint_url=self.endpoint_url,
                                                  config=self.config))

    def progress(self, step: str) -> None:
        if self.on_progress is not None:
            self.on_progress(min(99, int(100 * self.steps_done / max(1, self.steps_total))), step)

    def checkpoint(self) -> None:
        """Save the counters and details on the run row, and commit."""
        run = self.run
        run.ce_requests, run.ce_pages = self.meter.ce_requests, self.meter.ce_pages
        run.ce_cost, run.other_requests = self.meter.ce_cost, self.meter.other_requests
        run.rows_written = sum(self.rows.values())
        run.details = _jsonable({
            "payer_account_id": self.account_id, "periods": self.period_states, "rows_by_kind": self.rows,
            "errors": self.errors, "notes": self.notes, "regions": self.regions, "tag_keys": self.tag_keys,
            "requests": dict(self.meter.by_operation)})
        self.session.commit()

    def do(self, kind: str, work: Callable[[], KindOutcome]) -> None:
        """Run one kind; on failure roll its uncommitted writes back and say why, then go on."""
        saved = (copy.deepcopy(self.period_states), list(self.collected))
        try:
            outcome = work()
            self.rows[kind] = self.rows.get(kind, 0) + outcome.rows
            if outcome.note:
                self.notes[kind] = outcome.note
            self.checkpoint()
        except SoftTimeLimitExceeded:
            # The job's time is up: the whole collection stops here, not just this kind.
            self.session.rollback()
            raise
        except (ClientError, BotoCoreError) as exc:
            self.session.rollback()
            self.period_states, self.collected = saved
            logger.warning("collecting %s of profile %s failed: %s", kind, self.profile_id, exc)
            self.errors[kind] = _explain(kind, exc, region=self.regions[0])
            self.checkpoint()
        except Exception as exc:  # one kind's failure must not lose the others; logged with its trace
            self.session.rollback()
            self.period_states, self.collected = saved
            logger.exception("collecting %s of profile %s failed", kind, self.profile_id)
            self.errors[kind] = _explain(kind, exc, region=self.regions[0])
            self.checkpoint()

    # -- costs
    def plan_costs(self) -> list[CostPeriod]:
        if self.profile.payer_profile_id is not None:
            payer = self.session.get(AwsProfile, self.profile.payer_profile_id)
            if payer is not None and payer.is_active:
                self.notes["costs"] = (f"Costs of this account come from payer profile '{payer.name}'; "
                                       "collecting them here too would count them twice.")
                return []
        since = add_months(self.today, -(self.history_months - 1))
        self.period_states = self.load_period_states(since)
        dimensions = [name for name, _ in cost_groupings(self.tag_keys)]
        wanted, self.skipped = plan_cost_periods(today=self.today, history_months=self.history_months,
                                                 states=self.period_states, dimensions=dimensions)
        return wanted

    def load_period_states(self, since: dt.date) -> dict[str, dict[str, Any]]:
        states: dict[str, dict[str, Any]] = {}
        for details in self.session.scalars(select(CollectionRun.details).where(
                CollectionRun.profile_id == self.profile_id, CollectionRun.id != self.run.id,
                CollectionRun.started_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC))
                .order_by(CollectionRun.id)):
            if (details or {}).get("payer_account_id") == self.account_id:
                periods = cast(dict[str, dict[str, Any]], details.get("periods") or {})
                for month, state in periods.items():
                    if month >= since.isoformat():
                        states[month] = state
        return states

    def collect_costs(self, periods: Sequence[CostPeriod]) -> None:
        if not periods:
            self.do("costs", lambda: KindOutcome(0))
            return
        ce = self.client("ce")
        groupings = cost_groupings(self.tag_keys)
        for period in periods:
            self.progress(f"Costs of {period.billing_period:%B %Y}")

            def one_period(period: CostPeriod = period) -> KindOutcome:
                answers = {name: _get_cost_and_usage(ce, period=period, group_by=group_by)
                           for name, group_by in groupings}
                written = _write_cost_period(self.session, period=period, payer=self.account_id, answers=answers,
                                            actor_id=self.actor.user_id)
                is_final = not period.is_open and not any(a.is_estimated for a in answers.values())
                self.period_states[period.billing_period.isoformat()] = {
                    "final": is_final, "dimensions": [name for name, _ in groupings],
                    "collected_on": self.today.isoformat()}
                self.collected.append(period.billing_period)
                return KindOutcome(written)

            self.do("costs", one_period)
            self.steps_done += 1
            if "costs" in self.errors:  # the rest is collected by the next run
                break

    # -- the other kinds
    def parallel(self, work: Callable[[str], Any], regions: Sequence[str]) -> list[Any]:
        """Run ``work`` for each region on at most ``max_workers`` threads; results in region order."""
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(regions)),
                                thread_name_prefix="collector") as pool:
            return list(pool.map(work, regions))

    def inventory(self) -> KindOutcome:
        clients = {region: {s: self.client(s, region) for s in ("ec2", "elbv2", "rds")} for region in self.regions}
        scans: list[_RegionScan] = self.parallel(
            lambda region: _scan_region(region, clients[region], self.account_id), self.regions)
        written = _write_resources(self.session, account_id=self.account_id, scans=scans, today=self.today)
        failures = [(scan.region, t, exc) for scan in scans for t, exc in scan.errors.items()]
        if failures and not any(scan.listed for scan in scans):
            raise failures[0][2]
        if failures:  # keep what was listed; say what was not
            self.errors["inventory"] = "; ".join(
                f"{_explain('inventory', exc, region=region)} ({t} in {region})" for region, t, exc in failures)[:1000]
        return KindOutcome(written)

    def utilisation(self) -> KindOutcome:
        targets: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for pk, region, resource_type, resource_id in self.session.execute(
                select(Resource.id, Resource.region, Resource.resource_type, Resource.resource_id).where(
                    Resource.usage_account_id == self.account_id, Resource.region.in_(self.regions),
                    Resource.resource_type.in_(_CPU_TARGETS), Resource.state.not_in(_GONE_STATES))
                .order_by(Resource.id)):
            targets[region].append((pk, resource_type, resource_id))
        if not targets:
            return KindOutcome(0, "No EC2 or RDS instances are known in these regions: collect the inventory first.")
        end = dt.datetime.combine(self.today, dt.time(), tzinfo=dt.UTC)
        start = end - dt.timedelta(days=UTILISATION_DAYS)
        clients = {region: self.client("cloudwatch", region) for region in targets}
        regions = sorted(targets)
        results = self.parallel(lambda r: _read_cpu(clients[r], targets[r], start=start, end=end), regions)
        daily: dict[tuple[int, dt.date], dict[str, Decimal]] = defaultdict(dict)
        for values in results:
            for pk, day, stat, value in values:
                daily[(pk, day)][stat] = value
        pks = sorted({pk for pk, _day_ in daily})
        existing = {(u.resource_pk, u.usage_date): u for u in self.session.scalars(select(ResourceUtilisation).where(
            ResourceUtilisation.resource_pk.in_(pks), ResourceUtilisation.usage_date >= start.date()))}
        for (pk, day), stats in sorted(daily.items()):
            row = existing.get((pk, day))
            if row is None:
                row = ResourceUtilisation(resource_pk=pk, usage_date=day)
                self.session.add(row)
            row.cpu_avg, row.cpu_max = stats.get("a"), stats.get("m")
        return KindOutcome(len(daily))

    def accounts(self) -> KindOutcome:
        if not self.is_payer:
            return KindOutcome(0, "Only payer profiles list the organisation's accounts.")
        return collect_accounts(self.session, organizations=self.client("organizations"),
                                payer_account_id=self.account_id)

    def work_for(self, kind: str) -> Callable[[], KindOutcome]:
        work: dict[str, Callable[[], KindOutcome]] = {
            "forecast": lambda: collect_forecast(self.session, ce=self.client("ce"), profile_id=self.profile_id,
                                                 payer_account_id=self.account_id, today=self.today),
            "anomalies": lambda: collect_anomalies(self.session, ce=self.client("ce"),
                                                   payer_account_id=self.account_id, today=self.today),
            "commitments": lambda: collect_commitments(self.session, ce=self.client("ce"), profile_id=self.profile_id,
                                                       payer_account_id=self.account_id, today=self.today,
                                                       is_payer=self.is_payer),
            "rightsizing": lambda: collect_rightsizing(self.session, ce=self.client("ce"), profile_id=self.profile_id),
            "budgets": lambda: collect_budgets(self.session, budgets=self.client("budgets"),
                                               account_id=self.account_id, is_payer=self.is_payer, today=self.today),
            "inventory": self.inventory, "utilisation": self.utilisation, "accounts": self.accounts,
        }
        return work[kind]


def _check_input(kinds: Collection[str], *, tag_keys: Sequence[str], regions: Sequence[str] | None,
                 history_months: int, max_workers: int) -> tuple[str, ...]:
    wanted = set(kinds)
    unknown = sorted(wanted - set(KINDS))
    if not wanted or unknown:
        raise InvalidInput(f"kinds: choose from {', '.join(KINDS)}" + (f" (unknown: {', '.join(unknown)})"
                                                                      if unknown else ""))
    if len(set(tag_keys)) != len(tag_keys) or any(not k or len(k) > 128 or "$" in k for k in tag_keys):
        raise InvalidInput("tag_keys: give distinct tag keys of 1 to 128 characters, without '$'")
    if regions is not None and (not regions or set(regions) - AWS_REGIONS):
        raise InvalidInput(f"regions: unknown region(s): {', '.join(sorted(set(regions) - AWS_REGIONS))}"
                           if regions else "regions: give at least one region")
    if not 1 <= history_months <= MAX_HISTORY_MONTHS:
        raise InvalidInput(f"history_months: Cost Explorer keeps daily data for 1 to {MAX_HISTORY_MONTHS} months")
    if not 1 <= max_workers <= 32:
        raise InvalidInput("max_workers: between 1 and 32")
    return tuple(k for k in KINDS if k in wanted)


def collect_profile(
    session: Session,
    *,
    actor: Actor,
    profile_id: int,
    kinds: Collection[str],
    today: dt.date,
    endpoint_url: str | None = None,
    tag_keys: tuple[str, ...] = DEFAULT_TAG_KEYS,
    regions: tuple[str, ...] | None = None,
    on_progress: ProgressFn | None = None,
    max_workers: int = 4,
    history_months: int = MAX_HISTORY_MONTHS,
    client_config: Config | None = None,
    task_id: int | None = None,
) -> CollectionSummary:
    """Collect the given kinds of one profile's AWS data, committing as it goes; record the run.

    ``client_config`` replaces the botocore client settings (adaptive retries, 8 attempts);
    ``task_id`` links the run to the job's ``Task`` row.
    """
    wanted = _check_input(kinds, tag_keys=tag_keys, regions=regions, history_months=history_months,
                          max_workers=max_workers)
    require_role(actor, *JOB_ROLES)
    credentials = profiles.get_credentials(session, actor=actor, profile_id=profile_id,
                                           purpose="collection: " + ", ".join(wanted))
    profile = session.get(AwsProfile, profile_id)
    assert profile is not None  # get_credentials found it
    if not profile.is_active:
        raise InvalidInput(f"Profile '{profile.name}' is inactive: activate it to collect its data.")
    clock = time.monotonic()
    run = CollectionRun(profile_id=profile_id, task_id=task_id, kinds=list(wanted), status="running", details={})
    session.add(run)
    session.flush()
    meter = RequestMeter()
    state = _Run(session, actor=actor, profile=profile, run=run, boto=None, meter=meter,
                 config=client_config or CLIENT_CONFIG, endpoint_url=endpoint_url, today=today,
                 regions=regions or profile.default_regions, tag_keys=tag_keys, history_months=history_months,
                 max_workers=max_workers, on_progress=on_progress)
    state.checkpoint()
    state.progress("Signing in to AWS")
    try:
        state.boto = profiles.boto_session(credentials, endpoint_url=endpoint_url)
        if credentials.role_arn:
            meter.add_other()  # the AssumeRole call inside boto_session
        state.account_id = str(state.client("sts", credentials.region).get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        logger.warning("collection of profile %s could not sign in: %s", profile_id, exc)
        return _finish(state, wanted, clock, fatal=profiles.explain(exc, region=credentials.region))
    if profile.account_id != state.account_id:
        profile.account_id = state.account_id
        # Committed now: an open write would hold SQLite's lock through the next step, and the
        # job's progress (written on a connection of its own) would wait for it and fail.
        session.commit()
    periods = state.plan_costs() if "costs" in wanted else []
    state.steps_total = len(wanted) - 1 + max(1, len(periods)) if "costs" in wanted else len(wanted)
    for kind in wanted:
        if kind == "costs":
            state.collect_costs(periods)
            continue
        state.progress(_KIND_LABELS[kind])
        state.do(kind, state.work_for(kind))
        state.steps_done += 1
    return _finish(state, wanted, clock)


def _finish(state: _Run, wanted: tuple[str, ...], clock: float, *, fatal: str | None = None) -> CollectionSummary:
    """Close the run row, audit it, commit, and return the summary."""
    if fatal is not None:
        state.errors.update({kind: f"{_KIND_LABELS[kind]}: {fatal}" for kind in wanted})
    failed = set(state.errors)
    # partial: some kind worked, or a failing one got part of the way (its finished months stay)
    is_partial = bool(set(wanted) - failed) or any(state.rows.values())
    status = "succeeded" if not failed else ("partial" if is_partial else "failed")
    run = state.run
    state.checkpoint()
    run.status = status
    run.error = "; ".join(state.errors.values())[:4000] or None
    run.finished_at = utcnow()
    audit.record(state.session, actor=state.actor, action="collection.run", object_type="aws_profile",
                 object_id=state.profile_id, outcome="success" if status == "succeeded" else "failure",
                 details={"run_id": run.id, "kinds": list(wanted), "status": status,
                          "ce_requests": state.meter.ce_requests, "ce_cost": str(state.meter.ce_cost),
                          "rows_written": run.rows_written, "failed_kinds": sorted(failed)})
    state.session.commit()
    if state.on_progress is not None:
        state.on_progress(100, "Finished" if status == "succeeded" else "Finished with errors")
    logger.info("collection %s of profile %s: %s, %s Cost Explorer requests (USD %s), %s rows",
                run.id, state.profile_id, status, state.meter.ce_requests, state.meter.ce_cost, run.rows_written)
    return CollectionSummary(
        run_id=run.id, profile_id=state.profile_id, account_id=state.account_id or None, status=status, kinds=wanted,
        ce_requests=state.meter.ce_requests, ce_pages=state.meter.ce_pages, ce_cost=state.meter.ce_cost,
        other_requests=state.meter.other_requests, rows_written=run.rows_written, rows_by_kind=dict(state.rows),
        errors=dict(state.errors), notes=dict(state.notes), periods_collected=tuple(state.collected),
        periods_skipped=tuple(state.skipped), seconds=round(time.monotonic() - clock, 3))
