"""Request bodies of the service: every one forbids unknown fields and bounds every value,
so that nothing a client sends can reach the database in a shape it would reject (an
over-long string, a NUL byte, an integer beyond BIGINT) and turn into a server error.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from aris3nb.reference.money import ZERO, MoneyIn, PositiveMoneyIn

#: No control characters (PostgreSQL refuses NUL in text; the others are never meant).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MAX_ITEMS = 500
BIGINT_MAX = 2**63 - 1

StockItemId = Annotated[int, Field(strict=True, ge=1, le=BIGINT_MAX)]


def _no_duplicates(values: list[Any]) -> list[Any]:
    duplicates = sorted((value for value, count in Counter(values).items() if count > 1), key=str)
    if duplicates:
        raise ValueError(f"duplicate values: {', '.join(str(d) for d in duplicates[:10])}")
    return values


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Username = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=PRINTABLE)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE)]
LocationCode = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=PRINTABLE)]
Epc = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:-]+$")]
StockItemIds = Annotated[list[StockItemId], Field(min_length=1, max_length=MAX_ITEMS), AfterValidator(_no_duplicates)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    username: Username
    password: Password


class StockItemIn(Body):
    sku: Sku
    description: Description
    epc: Epc
    cost_price: MoneyIn
    sale_price: MoneyIn
    location_code: LocationCode = "RECEIVING"
    status: Annotated[Literal["PENDING", "RFID"], BeforeValidator(_upper)] = "PENDING"


def _unique_epcs(items: list[StockItemIn]) -> list[StockItemIn]:
    _no_duplicates([item.epc for item in items])
    return items


class StockIntakeBody(Body):
    store_id: uuid.UUID
    items: Annotated[list[StockItemIn], Field(min_length=1, max_length=MAX_ITEMS), AfterValidator(_unique_epcs)]


class TransferCreateBody(Body):
    origin_store_id: uuid.UUID
    destination_store_id: uuid.UUID
    stock_item_ids: StockItemIds

    @model_validator(mode="after")
    def _different_stores(self) -> TransferCreateBody:
        if self.origin_store_id == self.destination_store_id:
            raise ValueError("origin and destination must be different stores")
        return self


class TransferActionBody(Body):
    action: Annotated[Literal["dispatch", "receive", "cancel"], BeforeValidator(_lower)]
    stock_item_ids: StockItemIds | None = None

    @model_validator(mode="after")
    def _ids_only_to_receive(self) -> TransferActionBody:
        if self.stock_item_ids is not None and self.action != "receive":
            raise ValueError(f"stock_item_ids can only be given to receive, not to {self.action}")
        return self


class SaleLineIn(Body):
    stock_item_id: StockItemId
    discount: MoneyIn = ZERO


def _unique_sale_items(lines: list[SaleLineIn]) -> list[SaleLineIn]:
    _no_duplicates([line.stock_item_id for line in lines])
    return lines


class SaleCreateBody(Body):
    store_id: uuid.UUID
    lines: Annotated[list[SaleLineIn], Field(min_length=1, max_length=MAX_ITEMS), AfterValidator(_unique_sale_items)]


class PaymentIn(Body):
    method: Annotated[Literal["CASH", "CARD", "TRANSFER"], BeforeValidator(_upper)]
    amount: PositiveMoneyIn


class SaleActionBody(Body):
    action: Annotated[Literal["CHECKOUT", "CANCEL"], BeforeValidator(_upper)]
    payments: Annotated[list[PaymentIn], Field(max_length=20)] | None = None

    @model_validator(mode="after")
    def _payments_only_to_checkout(self) -> SaleActionBody:
        if self.action == "CHECKOUT" and self.payments is None:
            raise ValueError("CHECKOUT needs payments")
        if self.action == "CANCEL" and self.payments:
            raise ValueError("CANCEL takes no payments")
        return self


class CashSessionOpenBody(Body):
    store_id: uuid.UUID
    opening_amount: MoneyIn


class CashSessionCloseBody(Body):
    counted_amount: MoneyIn


class ExportCreateBody(Body):
    kind: Annotated[Literal["STOCK", "SALES"], BeforeValidator(_upper)]
    store_id: uuid.UUID | None = None
    format: Annotated[Literal["CSV"], BeforeValidator(_upper)] = "CSV"
