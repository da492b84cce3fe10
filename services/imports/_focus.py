"""FOCUS rows to facts: a row at a time (``focus_fact``) or a batch's columns at a time
(``focus_batch``), by the same mapping.

FOCUS (1.0, 1.1, 1.2) to ``FactRow``
    ================  ===============================================================
    usage_date        ChargePeriodStart (UTC date)
    billing_period    BillingPeriodStart (its month)
    provider          ProviderName (``ServiceProviderName``, FOCUS 1.3's name, accepted)
    payer_account_id  BillingAccountId
    usage_account_id  SubAccountId, or BillingAccountId when missing
    service           ServiceName
    service_category  ServiceCategory
    region            RegionId, or ``global`` when missing
    usage_type        x_UsageType (AWS's FOCUS export) when present, else SkuId, else
                      ChargeDescription cut to 128 characters, else empty. SkuId is the
                      provider-neutral, stable grain of a price; descriptions are free text.
    charge_category   ChargeCategory
    resource_id       ResourceId
    tags              Tags, a JSON object (missing: ``{}``); non-string scalars become their
                      JSON text, a null value an empty string
    unblended_cost    BilledCost
    amortized_cost    EffectiveCost
    net_cost          EffectiveCost: FOCUS has no separate "net" figure; EffectiveCost is the
                      cost after negotiated discounts and amortised commitments
    list_cost         ListCost
    contracted_cost   ContractedCost (missing or NULL: ListCost, the cost where no rate was negotiated)
    usage_quantity    ConsumedQuantity (missing: ``None``)
    usage_unit        ConsumedUnit
    currency          BillingCurrency (1.2's PricingCurrency is ignored: costs are as billed)
    ================  ===============================================================

    Required columns: BilledCost, BillingAccountId, BillingCurrency, BillingPeriodStart,
    ChargeCategory, ChargePeriodStart, EffectiveCost, ListCost, ProviderName, ServiceName.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from services.costs.ingest import ARROW_FACT_COLUMNS, QUANTITY_SCALE, FactRow, allocation_keys, tags_json
from services.imports._cells import (
    ZERO,
    Cells,
    NeedsRowPath,
    TextColumns,
    currency_code,
    parse_account,
    parse_currency,
    parse_day,
    tag_values,
)
from services.imports.formats import LIMITS, stored_account_id


def focus_fact(cells: Cells, period: dt.date) -> FactRow:
    """Map one FOCUS row to a fact of ``period``."""
    billing_account = parse_account(cells, "BillingAccountId")
    usage_start = cells.day("ChargePeriodStart", required=True)
    assert billing_account is not None and usage_start is not None  # required
    usage_type = (cells.text("x_UsageType", limit=LIMITS["usage_type"])
                  or cells.text("SkuId", limit=LIMITS["usage_type"])
                  or (cells.text("ChargeDescription") or "")[:LIMITS["usage_type"]])
    effective = cells.money("EffectiveCost", required=True)
    return FactRow(
        usage_date=usage_start,
        billing_period=period,
        provider=cells.text("ProviderName", required=True, limit=LIMITS["provider"]) or "",
        payer_account_id=billing_account,
        usage_account_id=parse_account(cells, "SubAccountId", required=False) or billing_account,
        service=cells.text("ServiceName", required=True, limit=LIMITS["service"]) or "",
        service_category=cells.text("ServiceCategory", limit=LIMITS["service_category"]),
        region=cells.text("RegionId", limit=LIMITS["region"]) or "global",
        usage_type=usage_type,
        charge_category=cells.text("ChargeCategory", required=True,
                                   limit=LIMITS["charge_category"]) or "",
        resource_id=cells.text("ResourceId", limit=LIMITS["resource_id"]),
        tags=cells.tags("Tags"),
        unblended_cost=cells.money("BilledCost", required=True) or ZERO,
        amortized_cost=effective or ZERO,
        net_cost=effective or ZERO,
        list_cost=cells.money("ListCost", required=True) or ZERO,
        contracted_cost=cells.money("ContractedCost"),  # missing: the list cost (no negotiated rate)
        usage_quantity=cells.number("ConsumedQuantity"),
        usage_unit=cells.text("ConsumedUnit", limit=LIMITS["usage_unit"]),
        currency=parse_currency(cells, "BillingCurrency"),
    )


def focus_batch(cells: dict[str, Any], period: dt.date, *, whole: bool = False) -> Any:
    """Map one batch of FOCUS text columns to the fact columns of its rows in ``period``
    (``whole``: the batch must hold no other rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = TextColumns(cells)
    text, parsed, money = columns.text, columns.parsed, columns.money
    in_period = pc.equal(columns.period("BillingPeriodStart"), pa.scalar(period))
    if not pc.all(in_period).as_py():
        if whole:
            raise NeedsRowPath
        columns.filter(in_period)
    billing_account = parsed("BillingAccountId", stored_account_id, pa.string(), required=True)
    sub_account = parsed("SubAccountId", stored_account_id, pa.string())
    limit = LIMITS["usage_type"]
    description = text("ChargeDescription")
    usage_type = pc.coalesce(text("x_UsageType", limit=limit), text("SkuId", limit=limit),
                             pc.utf8_slice_codeunits(description, 0, limit), pa.scalar("", pa.string()))
    tags = parsed("Tags", _tag_columns, pa.struct([("json", pa.string()), ("team", pa.string()),
                                                   ("cost_center", pa.string()), ("environment", pa.string())]))
    none = pa.scalar("{}", pa.string())
    quantity = columns.number("ConsumedQuantity", QUANTITY_SCALE)
    effective = money("EffectiveCost")
    list_cost = money("ListCost")
    contracted = columns.optional_money("ContractedCost")  # missing or NULL: the list cost
    facts = {
        "usage_date": parsed("ChargePeriodStart", parse_day, pa.date32(), required=True),
        "provider": text("ProviderName", required=True, limit=LIMITS["provider"]),
        "payer_account_id": billing_account,
        "usage_account_id": pc.coalesce(sub_account, billing_account),
        "service": text("ServiceName", required=True, limit=LIMITS["service"]),
        "service_category": text("ServiceCategory", limit=LIMITS["service_category"]),
        "region": pc.coalesce(text("RegionId", limit=LIMITS["region"]), pa.scalar("global", pa.string())),
        "usage_type": usage_type,
        "charge_category": text("ChargeCategory", required=True, limit=LIMITS["charge_category"]),
        "resource_id": text("ResourceId", limit=LIMITS["resource_id"]),
        "tags": pc.coalesce(pc.struct_field(tags, "json"), none),
        **{key: pc.coalesce(pc.struct_field(tags, key), pa.scalar("", pa.string()))
           for key in ("team", "cost_center", "environment")},
        "unblended_cost": money("BilledCost"),
        "amortized_cost": effective,
        "net_cost": effective,
        "list_cost": list_cost,
        "contracted_cost": list_cost if contracted is None else pc.coalesce(contracted, list_cost),
        "usage_quantity": quantity,
        "usage_unit": text("ConsumedUnit", limit=LIMITS["usage_unit"]),
        "currency": parsed("BillingCurrency", currency_code, pa.string(), required=True),
    }
    return pa.table({name: facts[name] for name in (*ARROW_FACT_COLUMNS, "contracted_cost")})


def _tag_columns(text: str) -> dict[str, str]:
    """A Tags cell as stored: its JSON and the allocation keys it resolves to."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    tags = tag_values(value)
    team, cost_center, environment = allocation_keys(tags)
    return {"json": tags_json(tags), "team": team, "cost_center": cost_center, "environment": environment}
