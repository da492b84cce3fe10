"""Collect one AWS profile's data with boto3: costs, forecasts, anomalies, commitments, advice,
budgets, inventory, utilisation and account names.

``collect_profile`` is the entry point the job layer calls, once per profile. It signs in, plans
the cost periods, and runs each kind with clients it makes: Cost Explorer in ``cost_explorer``
(costs, forecast, anomalies) and ``commitments`` (RI/SP reports, purchase and rightsizing
advice), ``budgets``, ``inventory`` (resources and their CloudWatch utilisation) and
``organizations`` (account names); each of those says what lands where.

Transactions
    ``collect_profile`` commits as it goes: after creating its ``CollectionRun`` row (so that a
    running collection is visible), after every billing period of costs, after every other kind,
    and at the end. A failure rolls back only the step that failed; every step before it stays,
    and the step is named in the summary's ``errors``. Call it with a session that holds no
    uncommitted work of its own. Because finished periods are committed together with the note
    that they are final, a collection that stopped midway is resumed by simply running it again.
    Celery's soft time limit is not a step's failure: it stops the whole collection (the step is
    rolled back) and goes on to the job layer.

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
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AwsProfile, CollectionRun
from models.base import utcnow
from services import audit
from services.aws import profiles
from services.aws._plumbing import THROTTLE_CODES, KindOutcome, error_code, jsonable
from services.aws.budgets import collect_budgets
from services.aws.commitments import collect_commitments, collect_rightsizing
from services.aws.cost_explorer import (
    CostPeriod,
    collect_anomalies,
    collect_forecast,
    cost_groupings,
    get_cost_and_usage,
    plan_cost_periods,
    write_cost_period,
)
from services.aws.inventory import (
    UTILISATION_DAYS,
    RegionScan,
    cpu_targets,
    read_cpu,
    scan_region,
    write_resources,
    write_utilisation,
)
from services.aws.organizations import collect_accounts
from services.aws.regions import AWS_REGIONS
from services.errors import InvalidInput
from services.identity.permissions import JOB_ROLES, Actor, require_role
from services.months import add_months

logger = logging.getLogger(__name__)

#: Every kind, in the order a collection runs them (inventory before utilisation).
KINDS = ("accounts", "costs", "budgets", "inventory", "utilisation", "forecast", "anomalies",
         "commitments", "rightsizing")
CE_REQUEST_PRICE = Decimal("0.01")
CE_REGION = "us-east-1"
DEFAULT_TAG_KEYS = ("team", "cost-center", "environment")
#: Cost Explorer keeps daily data for 14 months, the open one included.
MAX_HISTORY_MONTHS = 14
CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=60)

_PAGE_TOKENS = ("NextPageToken", "NextToken")
_KIND_LABELS = {"accounts": "Accounts", "costs": "Costs", "budgets": "Budgets", "inventory": "Inventory",
                "utilisation": "Utilisation", "forecast": "Forecast", "anomalies": "Anomalies",
                "commitments": "Commitments", "rightsizing": "Rightsizing"}

ProgressFn = Callable[[int, str], None]


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



# -- request accounting ---------------------------------------------------------------------------


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



# -- the run -------------------------------------------------------------------------------------


def _explain(kind: str, exc: Exception, *, region: str) -> str:
    """Say what went wrong with one kind in words a user can act on."""
    label = _KIND_LABELS[kind]
    if isinstance(exc, ClientError):
        code = error_code(exc)
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
        run.details = jsonable({
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
                answers = {name: get_cost_and_usage(ce, period=period, group_by=group_by)
                           for name, group_by in groupings}
                written = write_cost_period(self.session, period=period, payer=self.account_id, answers=answers,
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
        scans: list[RegionScan] = self.parallel(
            lambda region: scan_region(region, clients[region], self.account_id), self.regions)
        written = write_resources(self.session, account_id=self.account_id, scans=scans, today=self.today)
        failures = [(scan.region, t, exc) for scan in scans for t, exc in scan.errors.items()]
        if failures and not any(scan.listed for scan in scans):
            raise failures[0][2]
        if failures:  # keep what was listed; say what was not
            self.errors["inventory"] = "; ".join(
                f"{_explain('inventory', exc, region=region)} ({t} in {region})" for region, t, exc in failures)[:1000]
        return KindOutcome(written)

    def utilisation(self) -> KindOutcome:
        targets = cpu_targets(self.session, account_id=self.account_id, regions=self.regions)
        if not targets:
            return KindOutcome(0, "No EC2 or RDS instances are known in these regions: collect the inventory first.")
        end = dt.datetime.combine(self.today, dt.time(), tzinfo=dt.UTC)
        start = end - dt.timedelta(days=UTILISATION_DAYS)
        clients = {region: self.client("cloudwatch", region) for region in targets}
        results = self.parallel(lambda r: read_cpu(clients[r], targets[r], start=start, end=end), sorted(targets))
        return KindOutcome(write_utilisation(self.session, results=results, since=start.date()))

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
