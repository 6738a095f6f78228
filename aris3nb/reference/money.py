"""Money at the service's edges: what an amount may look like in a request, how it is
written in a response (always a string with two decimals), and how amounts are summed in
SQL without floating-point drift (SQLite keeps NUMERIC as doubles, so sums go via cents).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field

from aris3nb.contract.models import CENT

ZERO = Decimal("0.00")

#: An amount in a request: a JSON number or string, >= 0, at most 2 decimals, and small
#: enough for NUMERIC(12, 2). A float with more precision than cents is refused.
MoneyIn = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False, examples=["19.99"])]
PositiveMoneyIn = Annotated[
    Decimal, Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False, examples=["20.00"])
]


def to_cents(value: Decimal) -> Decimal:
    """``value`` rounded to the cent (half up), never negative zero."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP) + ZERO


def money(value: Decimal | None) -> str | None:
    """An amount as it appears in a response: ``"12.00"``."""
    return None if value is None else str(to_cents(value))


def sum_cents(column: Any) -> sa.ColumnElement[Any]:
    """``SUM(column)`` in whole cents, exact on every engine; 0 over no rows."""
    cents = sa.cast(sa.func.round(column * sa.literal_column("100")), sa.BigInteger)
    return sa.func.coalesce(sa.func.sum(cents), 0)


def from_cents(value: Any) -> Decimal:
    """The amount a ``sum_cents`` result stands for."""
    return to_cents(Decimal(int(value or 0)).scaleb(-2))
