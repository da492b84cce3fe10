"""CUR 2.0 rows to facts, a row at a time (``cur2_fact``).

CUR 2.0 to ``FactRow``
    ================  ===============================================================
    usage_date        line_item_usage_start_date (UTC date)
    billing_period    bill_billing_period_start_date (its month)
    provider          ``AWS``
    payer_account_id  bill_payer_account_id
    usage_account_id  line_item_usage_account_id
    service           the product name (what Cost Explorer and FOCUS call the service):
                      column ``product_product_name`` or key ``product_name`` of the
                      ``product`` map; else line_item_product_code; else product_servicecode
    region            product_region_code, key ``region_code`` of ``product``, product_region,
                      key ``region`` of ``product``, else ``global``
    usage_type        line_item_usage_type
    charge_category   line_item_line_item_type (Usage, SavingsPlanCoveredUsage, Tax, ...)
    resource_id       line_item_resource_id
    tags              resource_tags (a map in Parquet, JSON text in CSV); keys lose their
                      ``user_`` (or ``user:``) prefix, ``aws_`` keys stay; empty values dropped
    unblended_cost    line_item_unblended_cost
    amortized_cost    by line item type, as AWS's own amortised-cost queries compute it:
                      SavingsPlanCoveredUsage: savings_plan_savings_plan_effective_cost;
                      DiscountedUsage: reservation_effective_cost;
                      SavingsPlanNegation, SavingsPlanUpfrontFee: 0;
                      SavingsPlanRecurringFee: the unused commitment,
                      savings_plan_total_commitment_to_date - savings_plan_used_commitment
                      (0 when those columns are missing): the used part is already in the
                      covered usage, the unused part is still money spent;
                      RIFee: reservation_unused_amortized_upfront_fee_for_billing_period +
                      reservation_unused_recurring_fee (0 when missing), for the same reason;
                      Fee with a reservation_reservation_a_r_n (an RI bought upfront): 0;
                      anything else (Usage, Tax, Credit, Refund, discounts...): unblended
    net_cost          line_item_net_unblended_cost when present, else unblended
    list_cost         pricing_public_on_demand_cost when present; else 0 for
                      SavingsPlanNegation (the on-demand price sits on the covered line);
                      else unblended
    usage_quantity    line_item_usage_amount
    usage_unit        pricing_unit
    currency          line_item_currency_code
    ================  ===============================================================

    Required columns: bill_billing_period_start_date, bill_payer_account_id,
    line_item_usage_account_id, line_item_usage_start_date, line_item_line_item_type,
    line_item_product_code, line_item_unblended_cost, line_item_currency_code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.costs.ingest import FactRow
from services.imports._cells import MISSING, ZERO, Cells, parse_account, parse_currency
from services.imports.formats import LIMITS


def _cur2_amortized(cells: Cells, line_type: str, unblended: Decimal) -> Decimal:
    if line_type == "SavingsPlanCoveredUsage":
        return cells.money("savings_plan_savings_plan_effective_cost", required=True) or ZERO
    if line_type == "DiscountedUsage":
        return cells.money("reservation_effective_cost", required=True) or ZERO
    if line_type in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return ZERO
    if line_type == "SavingsPlanRecurringFee":
        total = cells.money("savings_plan_total_commitment_to_date")
        used = cells.money("savings_plan_used_commitment")
        return ZERO if total is None or used is None else total - used
    if line_type == "RIFee":
        upfront = cells.money("reservation_unused_amortized_upfront_fee_for_billing_period")
        recurring = cells.money("reservation_unused_recurring_fee")
        return (upfront or ZERO) + (recurring or ZERO)
    if line_type == "Fee" and cells.text("reservation_reservation_a_r_n"):
        return ZERO
    return unblended


def _map_text(mapping: dict[str, object], key: str) -> str | None:
    value = mapping.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return None if text in MISSING else text


def _cur2_tags(raw: dict[str, str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not value:
            continue
        for prefix in ("user_", "user:"):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        tags[key] = value
    return tags


def cur2_fact(cells: Cells, period: dt.date) -> FactRow:
    """Map one CUR 2.0 row to a fact of ``period``."""
    usage_start = cells.day("line_item_usage_start_date", required=True)
    payer = parse_account(cells, "bill_payer_account_id")
    account = parse_account(cells, "line_item_usage_account_id")
    line_type = cells.text("line_item_line_item_type", required=True,
                           limit=LIMITS["charge_category"])
    unblended = cells.money("line_item_unblended_cost", required=True)
    assert usage_start and payer and account and line_type and unblended is not None  # required
    product = cells.mapping("product") if cells.has("product") else {}
    service = (cells.text("product_product_name") or _map_text(product, "product_name")
               or cells.text("line_item_product_code") or cells.text("product_servicecode"))
    if service is None:
        raise cells.fail("line_item_product_code", "missing value")
    if len(service) > LIMITS["service"]:
        raise cells.fail("line_item_product_code",
                         f"{service[:40]!r}... is longer than {LIMITS['service']} characters")
    region = (cells.text("product_region_code") or _map_text(product, "region_code")
              or cells.text("product_region") or _map_text(product, "region") or "global")
    if len(region) > LIMITS["region"]:
        raise cells.fail("product_region_code",
                         f"{region[:40]!r} is longer than {LIMITS['region']} characters")
    net = cells.money("line_item_net_unblended_cost")
    listed = cells.money("pricing_public_on_demand_cost")
    if listed is None:
        listed = ZERO if line_type == "SavingsPlanNegation" else unblended
    return FactRow(
        usage_date=usage_start,
        billing_period=period,
        provider="AWS",
        payer_account_id=payer,
        usage_account_id=account,
        service=service,
        region=region,
        usage_type=cells.text("line_item_usage_type", limit=LIMITS["usage_type"]) or "",
        charge_category=line_type,
        resource_id=cells.text("line_item_resource_id", limit=LIMITS["resource_id"]),
        tags=_cur2_tags(cells.tags("resource_tags")),
        unblended_cost=unblended,
        amortized_cost=_cur2_amortized(cells, line_type, unblended),
        net_cost=unblended if net is None else net,
        list_cost=listed,
        usage_quantity=cells.number("line_item_usage_amount"),
        usage_unit=cells.text("pricing_unit", limit=LIMITS["usage_unit"]),
        currency=parse_currency(cells, "line_item_currency_code"),
    )
