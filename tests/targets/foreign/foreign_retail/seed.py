"""Deterministic demo data: the same scale gives the same rows, keys and export files.

``seed_database`` fills an empty database migrated to head with three merchants of three
outlets each, their accounts (one of them the smoke account, from ``FOREIGN_SMOKE_USER`` and
``FOREIGN_SMOKE_PASSWORD``), ``scale`` inventory units per outlet, consignments in every phase
with their items and events, till shifts with cash entries, receipts with items and tenders,
report exports written under the exports folder with their SHA-256 recorded, request keys and
activity journal rows. Every rule the integrity invariants in ``aris3nb.toml`` check holds.

Keys are UUIDv5 of a fixed namespace and a path (``unit/<merchant>/<outlet>/<n>``); times are
offsets from a fixed anchor; choices come from ``random.Random`` seeded with the scale.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import random
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from foreign_retail.db import create_engine, current_revision, head_revision
from foreign_retail.models import ITEM_PHASE_OF, metadata
from foreign_retail.security import hash_password

SMOKE_USER_ENV = "FOREIGN_SMOKE_USER"
SMOKE_PASSWORD_ENV = "FOREIGN_SMOKE_PASSWORD"
EXPORTS_DIR_ENV = "FOREIGN_EXPORTS_DIR"
SMOKE_MERCHANT = "smoke-retail"
ANCHOR = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
NAMESPACE = uuid.UUID("2f6b8f8e-5d0c-4c47-9d7e-0a4f3f7c1b11")
#: A digest no password can match: staff accounts exist but cannot log in.
LOCKED_DIGEST = "!locked"

MERCHANTS = (
    (SMOKE_MERCHANT, "Smoke Retail Ltd", "EUR"),
    ("harbor-goods", "Harbor Goods GmbH", "EUR"),
    ("northwind-apparel", "Northwind Apparel Inc", "USD"),
)
OUTLETS = (("CENTRAL", "Central Square"), ("HARBOUR", "Harbour Front"), ("AIRPORT", "Airport Terminal 2"))
ARTICLES = (
    ("TEE-BASIC-WHT", "Basic tee, white", 450, 1299),
    ("TEE-BASIC-BLK", "Basic tee, black", 450, 1299),
    ("HOOD-ZIP-NVY", "Zip hoodie, navy", 1800, 4999),
    ("JEAN-SLIM-32", "Slim jeans 32", 2100, 5900),
    ("JEAN-SLIM-34", "Slim jeans 34", 2100, 5900),
    ("CAP-LOGO-RED", "Logo cap, red", 300, 1500),
    ("SOCK-3PK-GRY", "Socks 3-pack, grey", 250, 899),
    ("JKT-RAIN-OLV", "Rain jacket, olive", 3900, 11900),
    ("BELT-LTH-BRN", "Leather belt, brown", 900, 3450),
    ("SCRF-WOOL-CRM", "Wool scarf, cream", 1100, 2995),
    ("BAG-TOTE-NAT", "Canvas tote", 400, 1250),
    ("SHRT-OXF-BLU", "Oxford shirt, blue", 1500, 3990),
)
#: Phases cycle so that every phase appears from scale 1 on, DELIVERED most often.
PHASE_CYCLE = ("DELIVERED", "SHIPPED", "OPEN", "VOID", "DELIVERED", "DELIVERED")
FLOAT_MINOR = 15_000
INSERT_ORDER = (
    "merchants",
    "outlets",
    "accounts",
    "account_outlet_grants",
    "inventory_units",
    "consignments",
    "consignment_items",
    "consignment_events",
    "tills",
    "till_shifts",
    "receipts",
    "till_entries",
    "receipt_items",
    "receipt_tenders",
    "report_exports",
    "request_keys",
    "activity_journal",
)


class SeedError(RuntimeError):
    """The database cannot be seeded as asked (not at head, not empty, no smoke account)."""


def uid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts))


def smoke_credentials() -> tuple[str, str]:
    user, password = os.environ.get(SMOKE_USER_ENV), os.environ.get(SMOKE_PASSWORD_ENV)
    if not user or not password:
        raise SeedError(f"set {SMOKE_USER_ENV} and {SMOKE_PASSWORD_ENV}: the seed creates the smoke account from them")
    return user, password


class _Builder:
    def __init__(self, scale: int, smoke_user: str, smoke_password: str) -> None:
        self.scale = scale
        self.rng = random.Random(f"foreign-retail/{scale}")
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.smoke_user = smoke_user
        self.smoke_password = smoke_password
        self.exports: dict[str, bytes] = {}

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        self.rows[table].append(row)
        return row

    def journal(
        self,
        when: dt.datetime,
        merchant: uuid.UUID,
        actor: uuid.UUID | None,
        verb: str,
        kind: str,
        ref: object,
        detail: str | None = None,
    ) -> None:
        self.add(
            "activity_journal",
            occurred_on=when,
            merchant_id=merchant,
            actor_account_id=actor,
            verb=verb,
            subject_kind=kind,
            subject_ref=str(ref),
            detail=detail,
        )

    def build(self) -> None:
        for m_index, (handle, legal_name, currency) in enumerate(MERCHANTS):
            self.merchant(m_index, handle, legal_name, currency)

    def merchant(self, m_index: int, handle: str, legal_name: str, currency: str) -> None:
        mid = uid("merchant", handle)
        self.add(
            "merchants",
            merchant_id=mid,
            handle=handle,
            legal_name=legal_name,
            currency_code=currency,
            onboarded_on=ANCHOR - dt.timedelta(days=60),
        )
        outlets = []
        for o_index, (code, name) in enumerate(OUTLETS):
            outlet = self.add(
                "outlets",
                outlet_id=uid("outlet", handle, code),
                merchant_id=mid,
                outlet_code=code,
                display_name=f"{legal_name.split()[0]} {name}",
                opened_on=ANCHOR - dt.timedelta(days=59, hours=-o_index),
            )
            outlets.append(outlet)
        registered = ANCHOR - dt.timedelta(days=58)
        owner = self.account(
            mid, None, f"{handle}.owner", f"owner@{handle}.invalid", "OWNER", LOCKED_DIGEST, registered
        )
        accounts = [owner]
        if handle == SMOKE_MERCHANT:
            email = self.smoke_user if "@" in self.smoke_user else f"{self.smoke_user}@smoke.invalid"
            salt = hashlib.sha256(f"seed-salt/{self.smoke_user}".encode()).digest()[:16]
            accounts.append(
                self.account(
                    mid, None, self.smoke_user, email, "OWNER", hash_password(self.smoke_password, salt), registered
                )
            )
        for account in accounts:
            for outlet in outlets:
                self.add(
                    "account_outlet_grants",
                    account_id=account["account_id"],
                    outlet_id=outlet["outlet_id"],
                    access_level="OWNER",
                    granted_on=registered,
                )
        clerks = {}
        for outlet in outlets:
            code = outlet["outlet_code"].lower()
            clerk = self.account(
                mid,
                outlet["outlet_id"],
                f"{handle}.clerk.{code}",
                f"clerk.{code}@{handle}.invalid",
                "CLERK",
                LOCKED_DIGEST,
                registered,
            )
            self.add(
                "account_outlet_grants",
                account_id=clerk["account_id"],
                outlet_id=outlet["outlet_id"],
                access_level="CLERK",
                granted_on=registered,
            )
            clerks[outlet["outlet_id"]] = clerk

        units: dict[uuid.UUID, dict[str, Any]] = {}
        on_hand: dict[uuid.UUID, list[uuid.UUID]] = {}
        for o_index, outlet in enumerate(outlets):
            on_hand[outlet["outlet_id"]] = []
            for n in range(self.scale):
                article, label, cost, price = ARTICLES[(n + o_index) % len(ARTICLES)]
                received = ANCHOR - dt.timedelta(days=40, minutes=-(n + 1))
                unit = self.add(
                    "inventory_units",
                    unit_id=uid("unit", handle, outlet["outlet_code"], n),
                    merchant_id=mid,
                    outlet_id=outlet["outlet_id"],
                    article_code=article,
                    label=label,
                    rfid_tag=f"E280{m_index:02d}{o_index:02d}{n:08X}",
                    unit_state="ON_HAND",
                    shelf=f"S{self.rng.randint(1, 20):02d}-{self.rng.choice('ABCD')}",
                    unit_cost_minor=cost,
                    list_price_minor=price,
                    received_on=received,
                    changed_on=received,
                )
                units[unit["unit_id"]] = unit
                on_hand[outlet["outlet_id"]].append(unit["unit_id"])

        self.consignments(mid, handle, outlets, owner, units, on_hand)
        self.tills_and_receipts(mid, handle, outlets, clerks, units, on_hand)
        self.report_exports(mid, handle, owner, outlets, units)
        for k in range(2):
            body = f'{{"report_kind":"INVENTORY_SNAPSHOT","n":{k}}}'
            self.add(
                "request_keys",
                account_id=owner["account_id"],
                request_key=f"exp-{handle}-{k:04d}",
                route="POST /api/v2/exports",
                body_sha256=hashlib.sha256(body.encode()).hexdigest(),
                answered_status=202,
                stored_on=ANCHOR + dt.timedelta(minutes=30 + k),
            )

    def account(
        self,
        mid: uuid.UUID,
        home: uuid.UUID | None,
        login: str,
        email: str,
        level: str,
        digest: str,
        registered: dt.datetime,
    ) -> dict[str, Any]:
        return self.add(
            "accounts",
            account_id=uid("account", login),
            merchant_id=mid,
            home_outlet_id=home,
            login_name=login,
            email=email,
            pw_digest=digest,
            access_level=level,
            enabled=True,
            registered_on=registered,
        )

    def consignments(
        self,
        mid: uuid.UUID,
        handle: str,
        outlets: list[dict[str, Any]],
        owner: dict[str, Any],
        units: dict[uuid.UUID, dict[str, Any]],
        on_hand: dict[uuid.UUID, list[uuid.UUID]],
    ) -> None:
        consigned: set[uuid.UUID] = set()
        actor = owner["account_id"]
        count = max(len(PHASE_CYCLE), self.scale // 4)
        # All consignments open in days -30..-21 and end by day -20, before the first shift.
        step = dt.timedelta(days=9) / count
        for c in range(count):
            phase = PHASE_CYCLE[c % len(PHASE_CYCLE)]
            origin, destination = outlets[c % 3], outlets[(c + 1) % 3]
            free = [u for u in on_hand[origin["outlet_id"]] if u not in consigned][: 1 + c % 3]
            if not free:
                continue
            cid = uid("consignment", handle, c)
            opened = ANCHOR - dt.timedelta(days=30) + step * c
            shipped = opened + dt.timedelta(hours=2) if phase in ("SHIPPED", "DELIVERED") else None
            delivered = opened + dt.timedelta(days=1) if phase == "DELIVERED" else None
            self.add(
                "consignments",
                consignment_id=cid,
                merchant_id=mid,
                from_outlet_id=origin["outlet_id"],
                to_outlet_id=destination["outlet_id"],
                phase=phase,
                opened_by=actor,
                opened_on=opened,
                shipped_on=shipped,
                delivered_on=delivered,
            )
            events = [("OPENED", origin, opened)]
            if shipped:
                events.append(("SHIPPED", origin, shipped))
            if delivered:
                events.append(("DELIVERED", destination, delivered))
            if phase == "VOID":
                events.append(("VOIDED", origin, opened + dt.timedelta(hours=3)))
            for e_index, (kind, outlet, when) in enumerate(events):
                self.add(
                    "consignment_events",
                    event_id=uid("consignment-event", cid, e_index),
                    consignment_id=cid,
                    event_kind=kind,
                    at_outlet_id=outlet["outlet_id"],
                    actor_account_id=actor,
                    note=None if kind != "VOIDED" else "cancelled before pick-up",
                    happened_on=when,
                )
                self.journal(when, mid, actor, f"consignment.{kind.lower()}", "consignment", cid)
            last = events[-1][2]
            for unit_id in free:
                consigned.add(unit_id)
                unit = units[unit_id]
                self.add("consignment_items", consignment_id=cid, unit_id=unit_id, item_phase=ITEM_PHASE_OF[phase])
                unit["changed_on"] = last
                if phase == "OPEN":
                    unit["unit_state"] = "RESERVED"
                    on_hand[origin["outlet_id"]].remove(unit_id)
                elif phase == "SHIPPED":
                    unit["unit_state"] = "SHIPPING"
                    on_hand[origin["outlet_id"]].remove(unit_id)
                elif phase == "DELIVERED":
                    unit["outlet_id"] = destination["outlet_id"]
                    on_hand[origin["outlet_id"]].remove(unit_id)
                    on_hand[destination["outlet_id"]].append(unit_id)

    def tills_and_receipts(
        self,
        mid: uuid.UUID,
        handle: str,
        outlets: list[dict[str, Any]],
        clerks: dict[uuid.UUID, dict[str, Any]],
        units: dict[uuid.UUID, dict[str, Any]],
        on_hand: dict[uuid.UUID, list[uuid.UUID]],
    ) -> None:
        days = max(2, min(20, self.scale // 4))
        reserve = max(1, self.scale // 4)
        for o_index, outlet in enumerate(outlets):
            oid, code = outlet["outlet_id"], outlet["outlet_code"]
            clerk = clerks[oid]["account_id"]
            sequence = 0
            for t_index in range(2 if o_index == 0 else 1):
                till = self.add(
                    "tills", till_id=uid("till", handle, code, t_index), outlet_id=oid, till_label=f"TILL-{t_index + 1}"
                )
                for day in range(days):
                    started = ANCHOR - dt.timedelta(days=days - day, hours=-1 - t_index)
                    active = day == days - 1 and t_index == 0
                    sid = uid("shift", till["till_id"], day)
                    shift = self.add(
                        "till_shifts",
                        shift_id=sid,
                        till_id=till["till_id"],
                        clerk_account_id=clerk,
                        shift_state="ACTIVE" if active else "ENDED",
                        float_minor=FLOAT_MINOR,
                        counted_minor=None,
                        started_on=started,
                        ended_on=None if active else started + dt.timedelta(hours=8),
                    )
                    entries = [
                        self.add(
                            "till_entries",
                            entry_id=uid("entry", sid, "float"),
                            shift_id=sid,
                            entry_kind="FLOAT",
                            amount_minor=FLOAT_MINOR,
                            memo="opening float",
                            booked_on=started,
                            receipt_id=None,
                        )
                    ]
                    for r in range(1 + self.rng.randint(0, 3)):
                        stock = on_hand[oid]
                        if len(stock) <= reserve:  # every outlet keeps some stock on hand
                            break
                        sequence += 1
                        issued = started + dt.timedelta(minutes=20 + 25 * r)
                        entry = self.receipt(mid, oid, code, sid, clerk, sequence, issued, units, stock)
                        if entry:
                            entries.append(entry)
                    if day % 5 == 3:
                        entries.append(
                            self.add(
                                "till_entries",
                                entry_id=uid("entry", sid, "payout"),
                                shift_id=sid,
                                entry_kind="PAYOUT",
                                amount_minor=-2500,
                                memo="window cleaning",
                                booked_on=started + dt.timedelta(hours=5),
                                receipt_id=None,
                            )
                        )
                    if not active:
                        shift["counted_minor"] = sum(e["amount_minor"] for e in entries)

    def receipt(
        self,
        mid: uuid.UUID,
        oid: uuid.UUID,
        code: str,
        sid: uuid.UUID,
        clerk: uuid.UUID,
        sequence: int,
        issued: dt.datetime,
        units: dict[uuid.UUID, dict[str, Any]],
        stock: list[uuid.UUID],
    ) -> dict[str, Any] | None:
        """One receipt; returns its cash till entry when it was paid (partly) in cash."""
        rid = uid("receipt", oid, sequence)
        picked = self.rng.sample(stock, min(len(stock), 1 + self.rng.randint(0, 2)))
        voided = sequence % 9 == 0
        gross = 0
        for line_no, unit_id in enumerate(picked, start=1):
            price = units[unit_id]["list_price_minor"]
            discount = price // 10 if self.rng.random() < 0.2 else 0
            gross += price - discount
            self.add(
                "receipt_items",
                item_id=uid("receipt-item", rid, line_no),
                receipt_id=rid,
                unit_id=unit_id,
                line_no=line_no,
                price_minor=price,
                discount_minor=discount,
            )
            if not voided:
                units[unit_id]["unit_state"] = "SOLD"
                units[unit_id]["changed_on"] = issued
                stock.remove(unit_id)
        settled = None if voided else issued + dt.timedelta(minutes=2)
        self.add(
            "receipts",
            receipt_id=rid,
            merchant_id=mid,
            outlet_id=oid,
            shift_id=sid,
            receipt_no=f"{code}-{sequence:06d}",
            receipt_state="VOIDED" if voided else "SETTLED",
            gross_minor=gross,
            issued_on=issued,
            settled_on=settled,
        )
        self.journal(issued, mid, clerk, "receipt.voided" if voided else "receipt.settled", "receipt", rid)
        if voided:
            return None
        mode = self.rng.choice(("CASH", "CARD", "SPLIT"))
        if mode == "CASH":
            tendered = -(-gross // 500) * 500
            self.add(
                "receipt_tenders",
                tender_id=uid("tender", rid, 0),
                receipt_id=rid,
                tender_kind="CASH",
                amount_minor=tendered,
                change_minor=tendered - gross,
            )
            return self.add(
                "till_entries",
                entry_id=uid("entry", rid),
                shift_id=sid,
                entry_kind="TAKING",
                amount_minor=gross,
                memo=None,
                booked_on=settled,
                receipt_id=rid,
            )
        voucher = min(1000, gross // 2) if mode == "SPLIT" else 0
        if voucher:
            self.add(
                "receipt_tenders",
                tender_id=uid("tender", rid, 1),
                receipt_id=rid,
                tender_kind="VOUCHER",
                amount_minor=voucher,
                change_minor=0,
            )
        self.add(
            "receipt_tenders",
            tender_id=uid("tender", rid, 0),
            receipt_id=rid,
            tender_kind="CARD",
            amount_minor=gross - voucher,
            change_minor=0,
        )
        return None

    def report_exports(
        self,
        mid: uuid.UUID,
        handle: str,
        owner: dict[str, Any],
        outlets: list[dict[str, Any]],
        units: dict[uuid.UUID, dict[str, Any]],
    ) -> None:
        codes = {o["outlet_id"]: o["outlet_code"] for o in outlets}
        generated = ANCHOR + dt.timedelta(hours=1)
        snapshot = sorted(
            (u["rfid_tag"], u["article_code"], codes[u["outlet_id"]], u["unit_state"]) for u in units.values()
        )
        takings: Counter[tuple[str, str]] = Counter()
        receipts = [r for r in self.rows["receipts"] if r["merchant_id"] == mid and r["receipt_state"] == "SETTLED"]
        for r in receipts:
            takings[(r["issued_on"].date().isoformat(), codes[r["outlet_id"]])] += r["gross_minor"]
        files = {
            "INVENTORY_SNAPSHOT": (("rfid_tag", "article_code", "outlet_code", "unit_state"), snapshot),
            "DAILY_TAKINGS": (("day", "outlet_code", "gross_minor"), sorted((*k, v) for k, v in takings.items())),
        }
        for kind, (header, rows) in files.items():
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            content = buffer.getvalue().encode()
            name = f"{handle}/{kind.lower()}_{generated:%Y%m%d}.csv"
            self.exports[name] = content
            eid = uid("export", handle, kind)
            self.add(
                "report_exports",
                export_id=eid,
                merchant_id=mid,
                requested_by=owner["account_id"],
                report_kind=kind,
                export_state="DONE",
                file_name=name,
                byte_size=len(content),
                row_total=len(rows),
                content_sha256=hashlib.sha256(content).hexdigest(),
                generated_on=generated,
            )
            self.journal(generated, mid, owner["account_id"], "export.generated", "report_export", eid)
        self.add(
            "report_exports",
            export_id=uid("export", handle, "failed"),
            merchant_id=mid,
            requested_by=owner["account_id"],
            report_kind="DAILY_TAKINGS",
            export_state="FAILED",
            file_name=None,
            byte_size=None,
            row_total=None,
            content_sha256=None,
            generated_on=generated + dt.timedelta(minutes=5),
        )


def seed_database(
    database_url: str, scale: int, exports_dir: Path, smoke_user: str, smoke_password: str
) -> dict[str, int]:
    """Fill an empty database at head; write the export files. Returns the row count per table."""
    if scale < 1:
        raise SeedError(f"scale must be at least 1, got {scale}")
    builder = _Builder(scale, smoke_user, smoke_password)
    builder.build()
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            revision, head = current_revision(conn), head_revision()
            if revision != head:
                raise SeedError(
                    f"the database is at revision {revision!r}, not at head {head!r}: run `alembic upgrade head` first"
                )
            if conn.execute(sa.text("SELECT count(*) FROM merchants")).scalar():
                raise SeedError("the database already holds merchants: seed only an empty database")
            # Files first, rows last: a seed that fails leaves no row pointing at a missing file.
            exports_dir.mkdir(parents=True, exist_ok=True)
            for name, content in builder.exports.items():
                path = exports_dir / name
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial")
                partial.write_bytes(content)
                partial.replace(path)
            for table in INSERT_ORDER:
                rows = builder.rows.get(table, [])
                for start in range(0, len(rows), 5000):
                    conn.execute(metadata.tables[table].insert(), rows[start : start + 5000])
    finally:
        engine.dispose()
    return {table: len(builder.rows.get(table, [])) for table in INSERT_ORDER}
