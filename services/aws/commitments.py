"""Commitments and advice from Cost Explorer: RI and Savings Plans reports, purchase and rightsizing advice.

commitments
    RI and SP utilisation and coverage of the previous and the open month -> ``CommitmentReport``
    (replaced per payer, kind and period start); RI (EC2, RDS) and Compute SP purchase advice ->
    ``Recommendation`` ``ri_purchase`` / ``sp_purchase`` (replaced per profile). 7 requests: RI
    utilisation and coverage, SP utilisation and coverage, RI purchase advice for EC2 and RDS,
    SP purchase advice.
rightsizing
    ``GetRightsizingRecommendation`` (EC2, same family) -> ``Recommendation`` ``rightsizing``
    (replaced per profile); 1 request per page.

moto implements none of these APIs; tests hand these functions stubbed clients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import delete
from sqlalchemy.orm import Session

from models import CommitmentReport, Recommendation
from services.aws._plumbing import KindOutcome, as_date, as_money, as_percent, call, error_code, jsonable, read_pages
from services.months import add_months

RI_SERVICES = ("Amazon Elastic Compute Cloud - Compute", "Amazon Relational Database Service")


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
                pages = list(read_pages(ce, operation, token, TimePeriod=period, Granularity="MONTHLY", **extra))
            else:
                pages = [call(ce, operation, TimePeriod=period, Granularity="MONTHLY", **extra)]
        except ClientError as exc:
            if error_code(exc) == "DataUnavailableException":  # no reservations or savings plans
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
        for page in read_pages(ce, "get_reservation_purchase_recommendation", "NextPageToken", Service=service,
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
                        estimated_monthly_savings=as_money(detail.get("EstimatedMonthlySavingsAmount")),
                        currency=str(detail.get("CurrencyCode") or "USD")[:3],
                        details=jsonable({"service": service, "term": "ONE_YEAR", "payment_option": "NO_UPFRONT",
                                           **detail})))
    for page in read_pages(ce, "get_savings_plans_purchase_recommendation", "NextPageToken",
                           SavingsPlansType="COMPUTE_SP", TermInYears="ONE_YEAR", PaymentOption="NO_UPFRONT",
                           LookbackPeriodInDays="THIRTY_DAYS", AccountScope=scope):
        plan = page.get("SavingsPlansPurchaseRecommendation", {})
        for detail in plan.get("SavingsPlansPurchaseRecommendationDetails", []):
            hourly = detail.get("HourlyCommitmentToPurchase", "?")
            advice.append(Recommendation(
                profile_id=profile_id, kind="sp_purchase", source="aws", usage_account_id=detail.get("AccountId"),
                summary=f"Commit USD {hourly} an hour to a 1-year Compute Savings Plan, no upfront"[:512],
                estimated_monthly_savings=as_money(detail.get("EstimatedMonthlySavingsAmount")),
                currency=str(detail.get("CurrencyCode") or "USD")[:3],
                details=jsonable({"savings_plans_type": "COMPUTE_SP", "term": "ONE_YEAR",
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
        period_start = as_date(period["Start"])
        session.execute(delete(CommitmentReport).where(
            CommitmentReport.payer_account_id == payer_account_id, CommitmentReport.kind == kind,
            CommitmentReport.period_start == period_start))
        session.add(CommitmentReport(
            profile_id=profile_id, payer_account_id=payer_account_id, kind=kind, period_start=period_start,
            period_end=as_date(period["End"]), percentage=as_percent(percentage), data=jsonable(data)))
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
        resource_id=resource_id or None, summary=summary[:512], estimated_monthly_savings=as_money(savings),
        currency=str(currency or current.get("CurrencyCode") or "USD")[:3], details=jsonable(item))


def collect_rightsizing(session: Session, *, ce: Any, profile_id: int | None) -> KindOutcome:
    """Replace the profile's AWS rightsizing advice for EC2 (same instance family, savings net of commitments)."""
    advice = [_rightsizing(item, profile_id=profile_id)
              for page in read_pages(ce, "get_rightsizing_recommendation", "NextPageToken", Service="AmazonEC2",
                                     Configuration={"RecommendationTarget": "SAME_INSTANCE_FAMILY",
                                                    "BenefitsConsidered": True})
              for item in page.get("RightsizingRecommendations", [])]
    _replace_recommendations(session, profile_id=profile_id, kinds=("rightsizing",), rows=advice)
    return KindOutcome(len(advice))
