"""Exports: idempotent creation, the file on disk, listing, verified download, tampering."""

from __future__ import annotations

import csv
import hashlib
import io
import stat
import uuid

import pytest
import sqlalchemy as sa

from aris3nb.contract import models as m


def _export(service, headers, key, **body):
    extra = {"Idempotency-Key": key} if key is not None else {}
    return service.client.post("/aris3/exports", headers={**headers, **extra}, json={"kind": "STOCK", **body})


@pytest.fixture
def stocked_export(service, smoke_admin, smoke_stores):
    service.intake(smoke_admin, smoke_stores[0], ["1.00", "2.00", "3.00"])
    service.intake(smoke_admin, smoke_stores[1], ["4.00"])
    response = _export(service, smoke_admin, f"key-{uuid.uuid4()}", store_id=smoke_stores[0])
    assert response.status_code == 201
    return response.json()


def test_an_idempotency_key_is_required(service, smoke_admin):
    response = _export(service, smoke_admin, None)
    assert response.status_code == 400
    assert response.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    for bad in (b"has space", b"k" * 129, "é".encode(), b"tab\tin"):
        invalid = service.client.post(
            "/aris3/exports", headers={**smoke_admin, "Idempotency-Key": bad}, json={"kind": "STOCK"}
        )
        assert invalid.status_code == 400 and invalid.json()["code"] == "IDEMPOTENCY_KEY_INVALID"


def test_an_export_writes_its_file_and_records_it(service, smoke_admin, smoke_stores, stocked_export):
    record = stocked_export
    assert (record["kind"], record["format"], record["status"], record["row_count"]) == ("STOCK", "CSV", "READY", 3)
    assert record["store_id"] == smoke_stores[0]
    assert not record["file_path"].startswith("/") and ".." not in record["file_path"]
    path = service.exports_dir / record["file_path"]
    data = path.read_bytes()
    assert len(data) == record["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == record["sha256"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temp file left behind"
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 3 and {r["store_code"] for r in rows} == {"SMOKE-A"}
    with service.db() as session:
        stored = session.get_one(m.ExportRecord, uuid.UUID(record["id"]))
        actions = session.scalars(sa.select(m.AuditEvent.action).where(m.AuditEvent.entity_id == record["id"])).all()
    assert stored.file_path == record["file_path"] and stored.sha256 == record["sha256"]
    assert actions == ["export.create"]


def test_a_replay_returns_the_same_body_and_creates_nothing(service, smoke_admin, smoke_stores):
    first = _export(service, smoke_admin, "replay-key-1", store_id=smoke_stores[0])
    # The same request spelled differently (defaults written out, keys reordered) is the same request.
    replay = service.client.post(
        "/aris3/exports",
        headers={**smoke_admin, "Idempotency-Key": "replay-key-1"},
        json={"format": "CSV", "store_id": smoke_stores[0], "kind": "STOCK"},
    )
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["x-idempotency-result"] == "IDEMPOTENCY_REPLAY"
    assert "x-idempotency-result" not in first.headers
    with service.db() as session:
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(m.ExportRecord)
                .where(m.ExportRecord.store_id == uuid.UUID(smoke_stores[0]))
            )
            == 1
        )
    files = list((service.exports_dir / first.json()["file_path"]).parent.iterdir())
    assert len(files) == 1


def test_the_same_key_with_another_payload_is_409(service, smoke_admin, smoke_stores):
    assert _export(service, smoke_admin, "reused-key").status_code == 201
    reused = _export(service, smoke_admin, "reused-key", store_id=smoke_stores[0])
    assert reused.status_code == 409
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    other_kind = service.client.post(
        "/aris3/exports", headers={**smoke_admin, "Idempotency-Key": "reused-key"}, json={"kind": "SALES"}
    )
    assert other_kind.status_code == 409


def test_keys_belong_to_a_tenant(service, smoke_admin):
    mine = _export(service, smoke_admin, "shared-key")
    theirs = _export(service, service.auth("northwind.admin"), "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "x-idempotency-result" not in theirs.headers


def test_download_serves_the_verified_file(service, smoke_admin, stocked_export):
    response = service.client.get(f"/aris3/exports/{stocked_export['id']}/download", headers=smoke_admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(response.content).hexdigest() == stocked_export["sha256"]
    assert response.headers["x-content-sha256"] == stocked_export["sha256"]
    assert "attachment" in response.headers["content-disposition"]


def test_a_tampered_file_is_refused(service, smoke_admin, stocked_export):
    path = service.exports_dir / stocked_export["file_path"]
    path.write_bytes(path.read_bytes().replace(b"SMOKE-A", b"SMOKE-X"))
    response = service.client.get(f"/aris3/exports/{stocked_export['id']}/download", headers=smoke_admin)
    assert response.status_code == 409
    assert response.json()["code"] == "EXPORT_FILE_CORRUPT"


def test_a_missing_file_is_410(service, smoke_admin, stocked_export):
    (service.exports_dir / stocked_export["file_path"]).unlink()
    response = service.client.get(f"/aris3/exports/{stocked_export['id']}/download", headers=smoke_admin)
    assert response.status_code == 410
    assert response.json()["code"] == "FILE_MISSING"


@pytest.mark.parametrize("file_path", ["../../etc/passwd", "/etc/passwd", "", "a/../../outside.csv"])
def test_a_record_path_never_escapes_the_exports_folder(service, smoke_admin, stocked_export, file_path):
    with service.db() as session:
        session.get_one(m.ExportRecord, uuid.UUID(stocked_export["id"])).file_path = file_path
    response = service.client.get(f"/aris3/exports/{stocked_export['id']}/download", headers=smoke_admin)
    assert response.status_code == 409
    assert response.json()["code"] == "EXPORT_PATH_UNSAFE"


def test_a_symlink_out_of_the_exports_folder_is_refused(service, smoke_admin, stocked_export, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_bytes((service.exports_dir / stocked_export["file_path"]).read_bytes())
    link = service.exports_dir / stocked_export["file_path"]
    link.unlink()
    link.symlink_to(outside)
    response = service.client.get(f"/aris3/exports/{stocked_export['id']}/download", headers=smoke_admin)
    assert response.status_code == 409 and response.json()["code"] == "EXPORT_PATH_UNSAFE"


def test_list_and_get(service, smoke_admin, stocked_export):
    listed = service.client.get("/aris3/exports", headers=smoke_admin).json()
    assert [row["id"] for row in listed["rows"]] == [stocked_export["id"]]
    assert service.client.get(f"/aris3/exports/{stocked_export['id']}", headers=smoke_admin).json() == stocked_export
    assert service.client.get(f"/aris3/exports/{uuid.uuid4()}", headers=smoke_admin).status_code == 404


def test_a_sales_export_counts_paid_sales(service):
    tenant = service.tenant("northwind")
    response = _export(service, service.auth("northwind.auditor"), "sales-1", kind="SALES")
    assert response.status_code == 201
    with service.db() as session:
        paid = session.scalar(
            sa.select(sa.func.count()).select_from(m.Sale).where(m.Sale.tenant_id == tenant.id, m.Sale.status == "PAID")
        )
    assert response.json()["row_count"] == paid > 0


def test_roles_and_store_scope(service):
    own, other = service.stores("northwind")
    cashier = service.auth(service.store_user(own, "cashier"))
    assert _export(service, cashier, "k1").status_code == 403
    manager = service.auth(service.store_user(own, "manager"))
    assert _export(service, manager, "k2", store_id=str(other.id)).status_code == 403
    mine = _export(service, manager, "k3")
    assert mine.status_code == 201 and mine.json()["store_id"] == str(own.id)
    tenant_wide = _export(service, service.auth("northwind.admin"), "k4").json()
    assert tenant_wide["store_id"] is None
    assert service.client.get(f"/aris3/exports/{tenant_wide['id']}", headers=manager).status_code == 403
    assert {row["store_id"] for row in service.client.get("/aris3/exports", headers=manager).json()["rows"]} == {
        str(own.id)
    }


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "PAYROLL"},
        {"kind": "STOCK", "format": "XLSX"},
        {"kind": "STOCK", "extra": 1},
        {"kind": "STOCK", "store_id": "nope"},
        {},
    ],
)
def test_bad_export_bodies_are_422(service, smoke_admin, body):
    response = service.client.post("/aris3/exports", headers={**smoke_admin, "Idempotency-Key": "bad-body"}, json=body)
    assert response.status_code == 422


def test_a_scoped_users_key_is_bound_to_their_store(service):
    own, _ = service.stores("northwind")
    admin_export = _export(service, service.auth("northwind.admin"), "scoped-key")
    assert admin_export.status_code == 201 and admin_export.json()["store_id"] is None
    # The same key and body from a store manager means "my store": not a replay of the tenant-wide export.
    manager = _export(service, service.auth(service.store_user(own, "manager")), "scoped-key")
    assert manager.status_code == 409 and manager.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_unwritable_storage_is_503_not_500(service, smoke_admin):
    # A file where the tenant's export folder should be: no user, root included, can write there.
    service.exports_dir.mkdir(parents=True, exist_ok=True)
    (service.exports_dir / str(service.tenant("smoke").id)).write_text("in the way")
    response = _export(service, smoke_admin, "no-room")
    assert response.status_code == 503
    assert response.json()["code"] == "EXPORT_STORAGE_UNAVAILABLE"
    with service.db() as session:
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(m.IdempotencyRecord)
                .where(m.IdempotencyRecord.idempotency_key == "no-room")
            )
            == 0
        )


def test_seeded_exports_download_and_verify(service):
    headers = service.auth("northwind.admin")
    listed = service.client.get("/aris3/exports", headers=headers).json()["rows"]
    assert {row["kind"] for row in listed} == {"STOCK", "SALES"}
    for row in listed:
        response = service.client.get(row["download_url"], headers=headers)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == row["sha256"]
        assert len(response.content.decode().splitlines()) == row["row_count"] + 1
