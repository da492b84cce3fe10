"""The two formats of a cost file, FOCUS 1.0-1.2 and CUR 2.0: their columns, what a header of each
looks like, and what the stored columns hold.

Account ids
    FOCUS account ids can be long (Azure ``/subscriptions/<guid>`` is about 52 characters, OCI
    tenancy OCIDs about 80); the account columns hold 128. An id that fits is stored unchanged; a longer one is
    stored as ``...<its last characters>#<8 hex digits of its SHA-256>`` (see
    ``stored_account_id``): stable, distinct, recognisable. The limit is read from the models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from models import CostAllocationRollup, CostDailyRollup, CostFact, CostMonthlyRollup
from services.errors import InvalidInput

Format = Literal["focus", "cur2"]


def _column_length(*columns: Any) -> int:
    return min(int(c.type.length) for c in columns)


#: The stored column of each fact attribute (of the lines or of their keys).
_FACT_COLUMNS = CostFact.__mapper__.columns
_ACCOUNT_ID_LENGTH = _column_length(
    _FACT_COLUMNS["payer_account_id"], _FACT_COLUMNS["usage_account_id"],
    CostDailyRollup.__table__.c.usage_account_id, CostAllocationRollup.__table__.c.usage_account_id,
    CostMonthlyRollup.__table__.c.usage_account_id,
)
#: The longest text each fact column holds.
LIMITS = {name: _column_length(_FACT_COLUMNS[name]) for name in (
    "provider", "service", "service_category", "region", "usage_type", "charge_category",
    "resource_id", "usage_unit",
)}


@dataclass(frozen=True)
class Layout:
    """The columns of one format: logical name -> accepted header names, first present wins."""

    required: dict[str, tuple[str, ...]]
    optional: dict[str, tuple[str, ...]]
    #: The key columns the first pass reads: billing period, billing account, currency, provider.
    period: str
    account: str
    currency: str
    provider: str | None


def _same(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in names}


LAYOUTS: dict[str, Layout] = {
    "focus": Layout(
        required={**_same("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
                          "ChargeCategory", "ChargePeriodStart", "EffectiveCost", "ListCost"),
                  "ProviderName": ("ProviderName", "ServiceProviderName"),
                  **_same("ServiceName")},
        optional=_same("SubAccountId", "ServiceCategory", "RegionId", "x_UsageType", "SkuId",
                       "ChargeDescription", "ResourceId", "Tags", "ConsumedQuantity",
                       "ConsumedUnit", "ContractedCost"),
        period="BillingPeriodStart", account="BillingAccountId", currency="BillingCurrency",
        provider="ProviderName",
    ),
    "cur2": Layout(
        required=_same("bill_billing_period_start_date", "bill_payer_account_id",
                       "line_item_usage_account_id", "line_item_usage_start_date",
                       "line_item_line_item_type", "line_item_product_code",
                       "line_item_unblended_cost", "line_item_currency_code"),
        optional=_same(
            "line_item_usage_type", "line_item_resource_id", "resource_tags",
            "line_item_net_unblended_cost", "pricing_public_on_demand_cost",
            "line_item_usage_amount", "pricing_unit", "product", "product_product_name",
            "product_servicecode", "product_region_code", "product_region",
            "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
            "savings_plan_used_commitment", "reservation_effective_cost",
            "reservation_unused_amortized_upfront_fee_for_billing_period",
            "reservation_unused_recurring_fee", "reservation_reservation_a_r_n",
        ),
        period="bill_billing_period_start_date", account="bill_payer_account_id",
        currency="line_item_currency_code", provider=None,
    ),
}


def detect_format(header: Sequence[str]) -> Format:
    """Tell a FOCUS header from a CUR 2.0 one by the columns each must have."""
    names = {h.strip() for h in header}
    scores = {fmt: sum(1 for aliases in layout.required.values() if names.intersection(aliases))
              for fmt, layout in LAYOUTS.items()}
    if max(scores.values()) >= 3:
        return "focus" if scores["focus"] >= scores["cur2"] else "cur2"
    if any(n.startswith("lineItem/") for n in names):
        raise InvalidInput("this is a legacy Cost and Usage Report (lineItem/... columns): "
                           "export CUR 2.0 or FOCUS instead")
    raise InvalidInput("not a FOCUS or CUR 2.0 file: the header has neither BilledCost and "
                       "ChargePeriodStart nor line_item_unblended_cost and "
                       "line_item_usage_start_date")


def stored_account_id(value: str) -> str:
    """Return an account id as stored: unchanged if it fits the column, else a stable short form."""
    if len(value) <= _ACCOUNT_ID_LENGTH:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    tail = _ACCOUNT_ID_LENGTH - len(digest) - 4
    return f"...{value[-tail:]}#{digest}"


__all__ = ["Format", "detect_format", "stored_account_id"]
