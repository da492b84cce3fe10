"""AWS Organizations: the names, emails and states of a payer's accounts.

``ListAccounts`` (payer profiles only) -> ``AwsAccount``; an account outside an organisation is
noted, not an error. Cost Explorer's answers also name linked accounts (``cost_explorer``).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AwsAccount
from services.aws._plumbing import KindOutcome, error_code, read_pages


def collect_accounts(session: Session, *, organizations: Any, payer_account_id: str) -> KindOutcome:
    """Upsert the organisation's accounts (names, emails, states) under the payer."""
    try:
        accounts = [a for page in read_pages(organizations, "list_accounts", "NextToken")
                    for a in page.get("Accounts", [])]
    except ClientError as exc:
        if error_code(exc) == "AWSOrganizationsNotInUseException":
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
