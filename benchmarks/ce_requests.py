"""Cost Explorer requests (USD 0.01 each) of one daily cost refresh: a payer of 3 linked accounts
against one of 200.

Starts its own moto server, seeds Cost Explorer's answers for both payers (the previous month still
estimated, so a refresh asks for it and for the open month), runs ``collectors.collect_profile``
with kinds {"costs"} on a temporary SQLite database, and prints the requests counted on botocore's
events, with and without follow-up pages, and what they cost. AWS does not document Cost
Explorer's page size; answers are split here every PAGE_GROUPS groups.

Run: .venv/bin/python benchmarks/ce_requests.py
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashapp.cli import migrate  # noqa: E402 - after the path set-up above
from models import CostDimensionDaily, CostFact  # noqa: E402
from services import audit, crypto, database, validation  # noqa: E402
from services.aws import collectors, cost_explorer, profiles  # noqa: E402
from services.crypto import Keyring  # noqa: E402
from services.identity.permissions import Actor  # noqa: E402

TODAY = dt.date(2025, 3, 8)
MONTHS = ((dt.date(2025, 3, 1), TODAY), (dt.date(2025, 2, 1), dt.date(2025, 3, 1)))
PAGE_GROUPS = 5_000
SERVICES = ("Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service", "AWS Lambda")
VALUES = {
    "SERVICE": SERVICES,
    "REGION": ("eu-west-1", "us-east-1"),
    "USAGE_TYPE": ("EUW1-BoxUsage:m5.large", "EUW1-TimedStorage-ByteHrs"),
    "RECORD_TYPE": ("Usage", "Tax"),
    "TAG:team": ("team$platform", "team$"),
    "TAG:cost-center": ("cost-center$cc-100", "cost-center$"),
    "TAG:environment": ("environment$prod", "environment$"),
}
ADMIN = Actor(user_id=None, username="benchmark", roles=frozenset({"admin"}))
KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto_server on a free local port and wait until it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],  # noqa: S603 - our own argv
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310 - a local URL
                return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"moto_server did not start:\n{log.read_text()}")


def answer_pages(grouping: str, start: dt.date, end: dt.date, accounts: list[str]) -> list[dict]:
    """Cost Explorer's answer to one request, split into pages of at most PAGE_GROUPS groups."""
    days = [start + dt.timedelta(days=n) for n in range((end - start).days)]
    per_day = len(accounts) * len(VALUES[grouping])
    per_page_days = max(1, PAGE_GROUPS // per_day)
    pages = []
    for first in range(0, len(days), per_page_days):
        results = []
        for day in days[first:first + per_page_days]:
            groups = []
            for n, account in enumerate(accounts):
                total = Decimal(n % 50 + 1) * Decimal("3.1415926535") + day.day * Decimal("0.0100000001")
                for share, value in enumerate(VALUES[grouping]):
                    amount = str((total / (share + 2)).quantize(Decimal("1E-10")))
                    groups.append({"Keys": [account, value], "Metrics": {
                        name: {"Amount": amount, "Unit": "USD" if name != "UsageQuantity" else "N/A"}
                        for name in cost_explorer.COST_METRICS}})
            results.append({"TimePeriod": {"Start": day.isoformat(), "End": (day + dt.timedelta(days=1)).isoformat()},
                            "Total": {}, "Groups": groups, "Estimated": True})
        pages.append({"ResultsByTime": results})
    for number, page in enumerate(pages[:-1], start=2):
        page["NextPageToken"] = f"{grouping}-{start}-{number}"
    return pages


def seed(moto: str, payer: str, accounts: list[str]) -> None:
    """Queue every answer in the order the collector asks: month by month, grouping by grouping."""
    for start, end in MONTHS:
        for grouping in VALUES:
            response = requests.post(f"{moto}/moto-api/static/ce/cost-and-usage-results", timeout=120, json={
                "account_id": payer, "results": answer_pages(grouping, start, end, accounts)})
            response.raise_for_status()


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        process, moto = start_moto(Path(scratch) / "moto.log")
        try:
            url = f"sqlite:///{Path(scratch) / 'bench.db'}"
            migrate(url)
            database.configure(url)
            crypto.configure(Keyring.generate_spec())
            audit.configure("benchmark-audit-key-0123456789")
            rows = []
            with database.session_scope() as session:
                source = profiles.create_profile(session, actor=ADMIN, data=validation.parse(  # type: ignore[arg-type]
                    profiles.ProfileCreate, {"name": "source", "access_key_id": KEY_ID, "secret_access_key": SECRET}))
                for size, payer in ((3, "100000000003"), (200, "100000000200")):
                    accounts = [payer] + [f"2{payer[1:8]}{n:04d}" for n in range(1, size)]
                    seed(moto, payer, accounts)
                    profile = profiles.create_profile(session, actor=ADMIN, data=validation.parse(  # type: ignore[arg-type]
                        profiles.ProfileCreate, {"name": f"payer-{size}", "auth_type": "assume_role",
                                                 "role_arn": f"arn:aws:iam::{payer}:role/FinOpsRead",
                                                 "source_profile_id": source.id, "is_payer": True}))
                    session.commit()
                    clock = time.perf_counter()
                    summary = collectors.collect_profile(session, actor=ADMIN, profile_id=profile.id, kinds={"costs"},
                                                         today=TODAY, endpoint_url=moto, history_months=2)
                    seconds = time.perf_counter() - clock
                    assert summary.status == "succeeded", summary.errors
                    facts = session.scalar(select(func.count()).select_from(CostFact)
                                           .where(CostFact.payer_account_id == payer))
                    breakdowns = session.scalar(select(func.count()).select_from(CostDimensionDaily)
                                                .where(CostDimensionDaily.payer_account_id == payer))
                    rows.append((size, summary, facts, breakdowns, seconds))
        finally:
            process.terminate()
            process.wait(10)
    print(f"Daily cost refresh on {TODAY} (open month and the previous, still estimated month), "
          f"{len(VALUES)} requests per month, pages of at most {PAGE_GROUPS} groups")
    print(f"{'accounts':>8} {'requests':>8} {'first':>6} {'pages':>6} {'USD':>6} {'facts':>7} {'breakdowns':>10} "
          f"{'seconds':>7}")
    for size, summary, facts, breakdowns, seconds in rows:
        print(f"{size:>8} {summary.ce_requests:>8} {summary.ce_requests_without_pages:>6} {summary.ce_pages:>6} "
              f"{summary.ce_cost:>6} {facts:>7} {breakdowns:>10} {seconds:>7.2f}")
    small, large = rows[0][1], rows[1][1]
    print(f"requests without pages: {small.ce_requests_without_pages} for 3 accounts, "
          f"{large.ce_requests_without_pages} for 200")
    print(f"30 daily refreshes: USD {small.ce_cost * 30} for 3 accounts, USD {large.ce_cost * 30} for 200")
    print(f"one request per linked account instead: {small.ce_requests_without_pages * 200} requests, "
          f"USD {small.ce_requests_without_pages * 200 * collectors.CE_REQUEST_PRICE} per refresh for 200 accounts")


if __name__ == "__main__":
    main()
