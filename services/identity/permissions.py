"""Who is acting, and what they may see and do."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AwsAccount, AwsProfile, ProfileGrant
from services.errors import PermissionDenied

ROLES = {
    "admin": "Everything, including users, profiles and settings",
    "finance": "All cost data, budgets, chargeback and exports",
    "engineering": "Cost and optimisation data of the AWS profiles granted to them; jobs",
    "executive": "Executive KPIs and all cost data, read only",
    "auditor": "Audit trail and all cost data, read only",
}
#: Roles that see every account's costs; the others see only their granted profiles' accounts.
ORG_WIDE_ROLES = frozenset({"admin", "finance", "executive", "auditor"})
JOB_ROLES = frozenset({"admin", "finance", "engineering"})


@dataclass(frozen=True)
class Actor:
    """The person (or system) on whose behalf a service acts."""

    user_id: int | None
    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    ip_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """Return the actor for work the system does by itself (schedules, start-up)."""
        return cls(user_id=None, username=name, roles=frozenset({"admin"}))

    def has_role(self, *roles: str) -> bool:
        """Tell whether the actor holds any of ``roles``."""
        return bool(self.roles.intersection(roles))


def require_role(actor: Actor, *roles: str) -> None:
    """Raise PermissionDenied unless the actor holds one of ``roles``."""
    if not actor.has_role(*roles):
        raise PermissionDenied("You do not have permission to do this.")


def visible_account_ids(session: Session, *, actor: Actor) -> frozenset[str] | None:
    """Return the account ids the actor may see, or None for every account."""
    if actor.has_role(*ORG_WIDE_ROLES):
        return None
    if actor.user_id is None:
        return frozenset()
    profile_ids = select(ProfileGrant.profile_id).where(ProfileGrant.user_id == actor.user_id)
    accounts = set(
        session.scalars(
            select(AwsProfile.account_id).where(
                AwsProfile.id.in_(profile_ids), AwsProfile.account_id.is_not(None)
            )
        )
    )
    payers = session.scalars(
        select(AwsProfile.account_id).where(AwsProfile.id.in_(profile_ids), AwsProfile.is_payer)
    ).all()
    if payers:
        accounts.update(
            session.scalars(
                select(AwsAccount.account_id).where(AwsAccount.payer_account_id.in_(payers))
            )
        )
    return frozenset(a for a in accounts if a)


#: The app's pages, in navigation order, with the roles that may open each one. The navigation
#: and the router both read this, so a page hidden from a role's navigation is also not found
#: when its address is typed in. Jobs: those who start jobs, and auditors who review them; Data:
#: admins, who manage profiles, and engineers, who are granted them; Administration: admins.
PAGES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("Overview", "/", frozenset(ROLES)),
    ("Cost explorer", "/explorer", frozenset(ROLES)),
    ("Jobs", "/jobs", JOB_ROLES | {"auditor"}),
    ("Data", "/data", frozenset({"admin", "engineering"})),
    ("Administration", "/admin", frozenset({"admin"})),
)


def pages_for(actor: Actor) -> list[tuple[str, str]]:
    """Return the (label, path) of the pages the actor may open, in navigation order."""
    return [(label, path) for label, path, roles in PAGES if actor.has_role(*roles)]


def may_open(actor: Actor, path: str) -> bool:
    """Tell whether the actor may open the page at ``path`` (a job's page follows /jobs)."""
    base = "/jobs" if path.startswith("/jobs/") else path
    return any(base == page_path and actor.has_role(*roles) for _, page_path, roles in PAGES)
