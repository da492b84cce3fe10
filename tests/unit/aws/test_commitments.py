"""RI and Savings Plans reports, purchase and rightsizing advice (moto lacks them): botocore's Stubber answers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from models import CommitmentReport, Recommendation
from services.aws import commitments

TODAY = dt.date(2025, 3, 10)
MARCH, FEBRUARY = dt.date(2025, 3, 1), dt.date(2025, 2, 1)


def _utilisation(start: str, end: str, percent: str) -> dict:
    return {"TimePeriod": {"Start": start, "End": end}, "Groups": [], "Total": {
        "UtilizationPercentage": percent, "PurchasedHours": "1488", "TotalActualHours": "1413.6",
        "UnusedHours": "74.4", "OnDemandCostOfRIHoursUsed": "135.71", "NetRISavings": "41.23",
        "TotalPotentialRISavings": "48.37", "AmortizedUpfrontFee": "0", "AmortizedRecurringFee": "94.48",
        "TotalAmortizedFee": "94.48", "RICostForUnusedHours": "4.97", "RealizedSavings": "41.23",
        "UnrealizedSavings": "7.14"}}


def test_ri_and_savings_plan_reports_and_purchase_advice_are_stored(session, ce):
    # moto implements none of GetReservationUtilization, GetReservationCoverage, GetSavingsPlansUtilization,
    # GetSavingsPlansCoverage, GetReservationPurchaseRecommendation, GetSavingsPlansPurchaseRecommendation
    client, stubber, meter = ce
    period = {"TimePeriod": {"Start": "2025-02-01", "End": "2025-03-10"}, "Granularity": "MONTHLY"}
    months = (("2025-02-01", "2025-03-01"), ("2025-03-01", "2025-03-10"))
    stubber.add_response("get_reservation_utilization", {
        "UtilizationsByTime": [_utilisation(*months[0], "95"), _utilisation(*months[1], "93.12")],
        "Total": _utilisation(*months[0], "94.3")["Total"]}, period)
    coverage = {"CoverageHours": {"OnDemandHours": "500", "ReservedHours": "1500", "TotalRunningHours": "2000",
                                  "CoverageHoursPercentage": "75"}, "CoverageCost": {"OnDemandCost": "48.00"}}
    stubber.add_response("get_reservation_coverage", {
        "CoveragesByTime": [{"TimePeriod": {"Start": s, "End": e}, "Groups": [], "Total": coverage} for s, e in months],
        "Total": coverage}, period)
    used = {"TotalCommitment": "720", "UsedCommitment": "684", "UnusedCommitment": "36", "UtilizationPercentage": "95"}
    stubber.add_response("get_savings_plans_utilization", {
        "SavingsPlansUtilizationsByTime": [{"TimePeriod": {"Start": s, "End": e}, "Utilization": used,
                                            "Savings": {"NetSavings": "210.5", "OnDemandCostEquivalent": "894.5"},
                                            "AmortizedCommitment": {"TotalAmortizedCommitment": "684"}}
                                           for s, e in months],
        "Total": {"Utilization": used}}, period)
    stubber.add_response("get_savings_plans_coverage", {"SavingsPlansCoverages": [
        {"Attributes": {}, "TimePeriod": {"Start": s, "End": e},
         "Coverage": {"SpendCoveredBySavingsPlans": "684", "OnDemandCost": "316", "TotalCost": "1000",
                      "CoveragePercentage": "68.4"}} for s, e in months]}, period)
    advice = {"AccountScope": "PAYER", "LookbackPeriodInDays": "THIRTY_DAYS", "TermInYears": "ONE_YEAR",
              "PaymentOption": "NO_UPFRONT"}
    stubber.add_response("get_reservation_purchase_recommendation", {
        "Metadata": {"RecommendationId": "ri-1", "GenerationTimestamp": "2025-03-09T04:11:52Z"},
        "Recommendations": [{**advice, "ServiceSpecification": {"EC2Specification": {"OfferingClass": "STANDARD"}},
                             "RecommendationDetails": [{
                                 "AccountId": "111122223333",
                                 "InstanceDetails": {"EC2InstanceDetails": {
                                     "Family": "m5", "InstanceType": "m5.large", "Region": "eu-west-1",
                                     "Platform": "Linux/UNIX", "Tenancy": "shared", "CurrentGeneration": True,
                                     "SizeFlexEligible": True}},
                                 "RecommendedNumberOfInstancesToPurchase": "4", "AverageUtilization": "97.1",
                                 "EstimatedMonthlySavingsAmount": "98.5540000000",
                                 "EstimatedMonthlySavingsPercentage": "35.2", "EstimatedMonthlyOnDemandCost": "280.32",
                                 "UpfrontCost": "0", "RecurringStandardMonthlyCost": "181.77", "CurrencyCode": "USD"}],
                             "RecommendationSummary": {"TotalEstimatedMonthlySavingsAmount": "98.554",
                                                       "CurrencyCode": "USD"}}]},
        {"Service": "Amazon Elastic Compute Cloud - Compute", **advice})
    stubber.add_response("get_reservation_purchase_recommendation", {
        "Metadata": {"RecommendationId": "ri-2", "GenerationTimestamp": "2025-03-09T04:11:52Z"},
        "Recommendations": []}, {"Service": "Amazon Relational Database Service", **advice})
    stubber.add_response("get_savings_plans_purchase_recommendation", {
        "Metadata": {"RecommendationId": "sp-1", "GenerationTimestamp": "2025-03-09T04:11:52Z"},
        "SavingsPlansPurchaseRecommendation": {
            **{k: v for k, v in advice.items()}, "SavingsPlansType": "COMPUTE_SP",
            "SavingsPlansPurchaseRecommendationDetails": [{
                "AccountId": "111122223333", "HourlyCommitmentToPurchase": "0.850", "UpfrontCost": "0",
                "EstimatedMonthlySavingsAmount": "155.1250000000", "EstimatedSavingsPercentage": "22.1",
                "EstimatedSPCost": "620.5", "EstimatedOnDemandCost": "775.625", "EstimatedROI": "25.0",
                "EstimatedAverageUtilization": "99.2", "CurrencyCode": "USD"}]}},
        {"SavingsPlansType": "COMPUTE_SP", "TermInYears": "ONE_YEAR", "PaymentOption": "NO_UPFRONT",
         "LookbackPeriodInDays": "THIRTY_DAYS", "AccountScope": "PAYER"})

    outcome = commitments.collect_commitments(session, ce=client, profile_id=None, payer_account_id="123456789012",
                                             today=TODAY)

    reports = {(r.kind, r.period_start): r.percentage for r in session.scalars(select(CommitmentReport))}
    assert reports == {("ri_utilisation", FEBRUARY): Decimal("95"), ("ri_utilisation", MARCH): Decimal("93.12"),
                       ("ri_coverage", FEBRUARY): Decimal("75"), ("ri_coverage", MARCH): Decimal("75"),
                       ("sp_utilisation", FEBRUARY): Decimal("95"), ("sp_utilisation", MARCH): Decimal("95"),
                       ("sp_coverage", FEBRUARY): Decimal("68.4"), ("sp_coverage", MARCH): Decimal("68.4")}
    advice_rows = {r.kind: r for r in session.scalars(select(Recommendation))}
    assert advice_rows["ri_purchase"].estimated_monthly_savings == Decimal("98.554")
    assert advice_rows["ri_purchase"].summary.startswith("Reserve 4 x m5.large")
    assert advice_rows["sp_purchase"].estimated_monthly_savings == Decimal("155.125")
    assert (outcome.rows, meter.ce_requests, meter.ce_cost) == (10, 7, Decimal("0.07"))


def test_rightsizing_advice_names_the_instance_and_the_monthly_saving(session, ce):
    # moto does not implement GetRightsizingRecommendation
    client, stubber, meter = ce
    def instance(resource_id: str, size: str, cost: str) -> dict:
        return {"ResourceId": resource_id, "InstanceName": "batch", "Tags": [],
                "ResourceDetails": {"EC2ResourceDetails": {"HourlyOnDemandRate": "0.192", "InstanceType": size,
                                                           "Platform": "Linux/UNIX", "Region": "eu-west-1",
                                                           "Vcpu": "4", "Memory": "16 GiB"}},
                "ResourceUtilization": {"EC2ResourceUtilization": {"MaxCpuUtilizationPercentage": "7"}},
                "TotalRunningHoursInLookbackPeriod": "336", "MonthlyCost": cost, "CurrencyCode": "USD"}
    stubber.add_response("get_rightsizing_recommendation", {
        "Metadata": {"RecommendationId": "rs-1", "GenerationTimestamp": "2025-03-09T04:11:52Z",
                     "LookbackPeriodInDays": "FOURTEEN_DAYS"},
        "Summary": {"TotalRecommendationCount": "2", "EstimatedTotalMonthlySavingsAmount": "210.24",
                    "SavingsCurrencyCode": "USD", "SavingsPercentage": "60"},
        "RightsizingRecommendations": [
            {"AccountId": "111122223333", "CurrentInstance": instance("i-0abc", "m5.xlarge", "140.16"),
             "RightsizingType": "MODIFY", "FindingReasonCodes": ["CPU_OVER_PROVISIONED"],
             "ModifyRecommendationDetail": {"TargetInstances": [{
                 "EstimatedMonthlyCost": "70.08", "EstimatedMonthlySavings": "70.08", "CurrencyCode": "USD",
                 "DefaultTargetInstance": True,
                 "ResourceDetails": {"EC2ResourceDetails": {"InstanceType": "m5.large"}}}]}},
            {"AccountId": "111122223333", "CurrentInstance": instance("i-0def", "m5.xlarge", "140.16"),
             "RightsizingType": "TERMINATE",
             "TerminateRecommendationDetail": {"EstimatedMonthlySavings": "140.16", "CurrencyCode": "USD"}}],
        "Configuration": {"RecommendationTarget": "SAME_INSTANCE_FAMILY", "BenefitsConsidered": True}},
        {"Service": "AmazonEC2", "Configuration": {"RecommendationTarget": "SAME_INSTANCE_FAMILY",
                                                   "BenefitsConsidered": True}})

    outcome = commitments.collect_rightsizing(session, ce=client, profile_id=None)

    rows = {r.resource_id: r for r in session.scalars(select(Recommendation))}
    assert (outcome.rows, meter.ce_requests) == (2, 1)
    assert (rows["i-0abc"].summary, rows["i-0abc"].estimated_monthly_savings) == (
        "Resize i-0abc from m5.xlarge to m5.large", Decimal("70.08"))
    assert (rows["i-0def"].summary, rows["i-0def"].estimated_monthly_savings) == (
        "Terminate i-0def (m5.xlarge): it is idle", Decimal("140.16"))
