"""Factories for test data, going through the same services the product uses."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pyotp
from sqlalchemy.orm import Session

from models import User
from models.base import utcnow
from services import crypto
from services.costs.ingest import FactRow
from services.identity import auth
from services.identity.permissions import Actor

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def make_user(session: Session, *, username: str | None = None, roles: tuple[str, ...] = ("finance",),
              password: str = PASSWORD) -> User:
    """Create a local account."""
    data = auth.parse_new_user(username=username or f"user{next(_counter)}", password=password,
                               roles=list(roles))
    return auth.create_user(session, actor=Actor.system("test"), data=data)


def make_profiles(session: Session, count: int, *, run_grant_to: int | None = None) -> list[int]:
    """Create ``count`` key profiles (without keys) and return their ids; optionally grant one user runs."""
    from models import AwsProfile, ProfileGrant

    made = [AwsProfile(name=f"profile{next(_counter)}", description="", auth_type="keys",
                       default_regions=["us-east-1"]) for _ in range(count)]
    session.add_all(made)
    session.flush()
    if run_grant_to is not None:
        session.add_all(ProfileGrant(user_id=run_grant_to, profile_id=p.id, can_run_jobs=True) for p in made)
        session.flush()
    return [p.id for p in made]


def enrol_totp(session: Session, *, user: User) -> str:
    """Give a user a confirmed TOTP device and return its secret."""
    enrolment = auth.begin_enrolment(session, user=user)
    now = utcnow() - dt.timedelta(seconds=60)  # leave the current step free for the test
    auth.confirm_enrolment(session, user=user, code=pyotp.TOTP(enrolment.secret).at(now),
                           ip_address=None, user_agent=None, now=now)
    return enrolment.secret


def fact(day: dt.date, account: str, service: str, cost: str, **extra: object) -> FactRow:
    """Return a fact row whose four cost metrics derive from one amount."""
    amount = Decimal(cost)
    values: dict[str, object] = {
        "usage_date": day, "usage_account_id": account, "service": service,
        "unblended_cost": amount, "amortized_cost": amount * Decimal("0.9"),
        "net_cost": amount * Decimal("0.97"), "list_cost": amount * Decimal("1.1"),
        "payer_account_id": "999999999999",
    }
    values.update(extra)
    return FactRow(**values)  # type: ignore[arg-type]


__all__ = ["PASSWORD", "crypto", "enrol_totp", "fact", "make_user"]
