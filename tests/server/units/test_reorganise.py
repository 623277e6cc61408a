"""Renaming, moving, merging and dissolving units, one at a time and from a reorganisation file,
on the demo map (2016 Cần Thơ) in a real migrated SQLite database."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from starlette.applications import Starlette

from server.__main__ import main
from server.accounts import service as accounts
from server.accounts.models import User
from server.audit.models import AuditEntry
from server.csvfile import ImportFailed
from server.db import Database
from server.demo import DATA_DIR
from server.errors import Conflict, InvalidInput
from server.settings import Settings
from server.units import reorganise, service
from server.units.models import Unit, UnitChange
from server.units.reorganise import ReorgResult

HEADER = "old_code,new_code,new_name,new_parent_code,new_level,new_kind\n"
EXAMPLE = DATA_DIR / "reorganisations" / "example-merge-into-new-ward.csv"
REAL = DATA_DIR / "reorganisations"


@pytest.fixture
def db(app: Starlette) -> Database:
    database: Database = app.state.giaoban.db
    return database


def count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def snapshot(db: Database) -> tuple[int, ...]:
    """Everything a reorganisation could write, counted."""
    with db.session() as session:
        active_units = int(session.exec(select(func.count()).where(Unit.active == True)).one())  # noqa: E712
        active_users = int(session.exec(select(func.count()).where(User.active == True)).one())  # noqa: E712
        return count(session, Unit), active_units, count(session, UnitChange), count(session, AuditEntry), count(session, User), active_users


def apply(db: Database, text: str, batch: str = "test.csv") -> ReorgResult:
    with db.session() as session:
        return reorganise.apply_file(session, text.encode(), actor=None, batch=batch)


def unit(session: Session, code: str) -> Unit:
    return service.by_code(session, code)


def user(session: Session, username: str) -> User:
    return accounts.by_username(session, username)


def audit_details(session: Session, action: str) -> list[dict[str, object]]:
    entries = session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()
    return [{"target": e.target, **json.loads(e.detail or "{}")} for e in entries]


# --- the file: the reorganisations Cần Thơ went through ------------------------------------


def test_three_wards_merged_into_a_new_ward_from_the_shipped_example(db: Database) -> None:
    with db.session() as session:
        result = reorganise.apply_file(session, EXAMPLE.read_bytes(), actor=None, batch="example-merge-into-new-ward.csv")
    assert result == ReorgResult(created=1, merged=3)
    with db.session() as session:
        new = unit(session, "ct.ninh-kieu.tan-an-2024")
        ninh_kieu = unit(session, "ct.ninh-kieu")
        assert (new.name, new.level, new.kind, new.parent_id, new.active) == ("Phường Tân An", "ward", "phường", ninh_kieu.id, True)
        assert len(service.children(session, ninh_kieu)) == 13 - 3 + 1
        for code, name in [("ct.ninh-kieu.an-hoi", "Phường An Hội"), ("ct.ninh-kieu.an-lac", "Phường An Lạc"), ("ct.ninh-kieu.tan-an", "Phường Tân An")]:
            old = unit(session, code)
            # the old row is kept, inactive, with the name past records saw, pointing onward
            assert (old.active, old.name, old.merged_into_id, old.parent_id) == (False, name, new.id, ninh_kieu.id)
            assert [(h.action, h.old_value, h.new_value, h.actor, h.batch) for h in service.history(session, old)][-1] == (
                "merge", code, new.code, "cli", "example-merge-into-new-ward.csv",
            )
            assert user(session, code).active is False  # the old meeting room's endpoint account
        assert [h.old_value for h in service.history(session, new) if h.action == "merge"] == [
            "ct.ninh-kieu.an-hoi", "ct.ninh-kieu.an-lac", "ct.ninh-kieu.tan-an",
        ]
        official = user(session, "canbo.tanan")  # a person of the old Tân An moves with it
        assert official.unit_id == new.id and official.active
        assert user(session, new.code).role == "endpoint" and user(session, new.code).active
        merged = {d["target"]: d for d in audit_details(session, "unit_merged")}
        assert merged["ct.ninh-kieu.tan-an"]["people"] == ["canbo.tanan"]
        summary = audit_details(session, "units_reorganised")
        assert summary == [{"target": "example-merge-into-new-ward.csv", "created": 1, "merged": 3, "renamed": 0,
                            "moved": 0, "dissolved": 0, "edited": 0}]


def test_the_real_2020_and_2024_ninh_kieu_mergers_leave_8_wards_and_80_in_the_city(db: Database) -> None:
    """NQ 893/NQ-UBTVQH14 (2020): An Hội, An Lạc into Tân An; NQ 1192/NQ-UBTVQH15 (effective
    1 Nov 2024): An Phú, An Nghiệp, An Cư into Thới Bình. Both merge into existing wards."""
    for name in ("cantho-2020-ninh-kieu.csv", "cantho-2024-ninh-kieu.csv"):
        with db.session() as session:
            reorganise.apply_file(session, (REAL / name).read_bytes(), actor=None, batch=name)
    with db.session() as session:
        ninh_kieu = unit(session, "ct.ninh-kieu")
        assert sorted(u.name for u in service.children(session, ninh_kieu)) == sorted([
            "Phường Tân An", "Phường Thới Bình", "Phường Cái Khế", "Phường An Hòa",
            "Phường Xuân Khánh", "Phường Hưng Lợi", "Phường An Bình", "Phường An Khánh",
        ])
        assert len(service.search(session, level="ward")[0]) == 80
        assert unit(session, "ct.ninh-kieu.an-cu").merged_into_id == unit(session, "ct.ninh-kieu.thoi-binh").id
        assert unit(session, "ct.ninh-kieu.tan-an").active  # the target keeps its code and row


BINH_THUY_CAI_RANG_2025 = HEADER + """\
ct.binh-thuy,,,,,
ct.cai-rang,,,,,
ct.binh-thuy.binh-thuy,ct.binh-thuy-2025,Phường Bình Thủy,ct,ward,phường
ct.binh-thuy.an-thoi,ct.binh-thuy-2025,,,,
ct.binh-thuy.bui-huu-nghia,ct.binh-thuy-2025,,,,
ct.binh-thuy.long-tuyen,ct.long-tuyen-2025,Phường Long Tuyền,ct,ward,phường
ct.binh-thuy.long-hoa,ct.long-tuyen-2025,,,,
ct.binh-thuy.thoi-an-dong,ct.thoi-an-dong-2025,Phường Thới An Đông,ct,ward,phường
ct.binh-thuy.tra-an,ct.thoi-an-dong-2025,,,,
ct.binh-thuy.tra-noc,ct.thoi-an-dong-2025,,,,
ct.cai-rang.le-binh,ct.cai-rang-2025,Phường Cái Răng,ct,ward,phường
ct.cai-rang.ba-lang,ct.cai-rang-2025,,,,
ct.cai-rang.thuong-thanh,ct.cai-rang-2025,,,,
ct.cai-rang.hung-phu,ct.hung-phu-2025,Phường Hưng Phú,ct,ward,phường
ct.cai-rang.hung-thanh,ct.hung-phu-2025,,,,
ct.cai-rang.tan-phu,ct.hung-phu-2025,,,,
ct.cai-rang.phu-thu,ct.cai-rang.phu-thu,,ct,,
"""


def test_2025_districts_dissolved_and_their_wards_regrouped_directly_under_the_city(db: Database) -> None:
    result = apply(db, BINH_THUY_CAI_RANG_2025)
    assert result == ReorgResult(created=5, merged=14, moved=1, dissolved=2)
    with db.session() as session:
        city = unit(session, "ct")
        for code in ("ct.binh-thuy", "ct.cai-rang"):
            district = unit(session, code)
            assert (district.active, district.merged_into_id) == (False, None)
            assert service.children(session, district) == []
            assert user(session, code).active is False
            assert service.history(session, district)[-1].action == "dissolve"
        for code in ("ct.binh-thuy-2025", "ct.long-tuyen-2025", "ct.thoi-an-dong-2025", "ct.cai-rang-2025", "ct.hung-phu-2025", "ct.cai-rang.phu-thu"):
            assert unit(session, code).parent_id == city.id and unit(session, code).active
        phu_thu = unit(session, "ct.cai-rang.phu-thu")  # kept as it was, only moved
        assert [(h.action, h.old_value, h.new_value) for h in service.history(session, phu_thu)][-1] == ("move", "ct.cai-rang", "ct")
        tra_noc = unit(session, "ct.binh-thuy.tra-noc")
        assert tra_noc.merged_into_id == unit(session, "ct.thoi-an-dong-2025").id and tra_noc.name == "Phường Trà Nóc"
        assert {d["target"] for d in audit_details(session, "unit_dissolved")} == {"ct.binh-thuy", "ct.cai-rang"}
        # the same search a scheduler uses ("wards under the city") now finds them at once
        assert len(service.search(session, level="ward", parent="ct")[0]) == 6


def test_a_new_unit_may_be_the_parent_of_another_new_unit_on_any_line(db: Database) -> None:
    text = HEADER + (
        "ct.o-mon.thoi-an,ct.tay-do.thoi-an,Phường Thới An,ct.tay-do,ward,phường\n"
        "ct.o-mon.thoi-long,ct.tay-do.thoi-an,,,,\n"
        "ct.o-mon,ct.tay-do,Quận Tây Đô,ct,district,quận\n"
        "ct.thot-not,ct.tay-do,,,,\n"
    )
    assert apply(db, text) == ReorgResult(created=2, merged=4)
    with db.session() as session:
        tay_do = unit(session, "ct.tay-do")
        assert unit(session, "ct.tay-do.thoi-an").parent_id == tay_do.id
        # the wards no row mentions follow their merged district
        assert len(service.children(session, tay_do)) == 1 + (7 - 2) + 9
        assert unit(session, "ct.o-mon.thoi-an").parent_id == unit(session, "ct.o-mon").id  # history untouched
        assert service.history(session, unit(session, "ct.thot-not.tan-loc"))[-1].new_value == "ct.tay-do"


def test_a_unit_kept_in_place_is_renamed_moved_and_takes_in_others(db: Database) -> None:
    text = HEADER + (
        "ct.ninh-kieu.an-khanh,ct.ninh-kieu.an-khanh,  Phường  An Khánh mới ,,,\n"
        "ct.ninh-kieu.an-binh,ct.ninh-kieu.an-khanh,,,,\n"
        "ct.ninh-kieu.hung-loi,ct.ninh-kieu.hung-loi,,ct.cai-rang,,\n"
    )
    assert apply(db, text) == ReorgResult(merged=1, renamed=1, moved=1)
    with db.session() as session:
        an_khanh = unit(session, "ct.ninh-kieu.an-khanh")
        assert (an_khanh.name, an_khanh.search_key) == ("Phường An Khánh mới", "phuong an khanh moi")
        assert user(session, an_khanh.code).full_name == "Phường An Khánh mới"  # endpoint follows
        assert unit(session, "ct.ninh-kieu.an-binh").merged_into_id == an_khanh.id
        assert unit(session, "ct.ninh-kieu.hung-loi").parent_id == unit(session, "ct.cai-rang").id


def test_a_town_becomes_a_commune_in_place(db: Database) -> None:
    text = "old_code,new_code,new_name,new_kind,new_email\n" + (
        "ct.phong-dien.phong-dien,ct.phong-dien.phong-dien,Xã Phong Điền,xã,xa.phongdien@cantho.gov.vn.test\n"
    )
    assert apply(db, text) == ReorgResult(renamed=1, edited=1)
    with db.session() as session:
        town = unit(session, "ct.phong-dien.phong-dien")
        assert (town.name, town.kind, town.level, town.email) == ("Xã Phong Điền", "xã", "ward", "xa.phongdien@cantho.gov.vn.test")
        assert {h.action for h in service.history(session, town)} >= {"rename", "edit:kind", "edit:email"}


def test_a_reorganisation_file_is_checked_against_nfc_and_a_bom(db: Database) -> None:
    name = unicodedata.normalize("NFD", "Phường Tân An")
    data = "\ufeff" + HEADER + f"ct.ninh-kieu.an-hoi,ct.ninh-kieu.tan-an-2024,{name},CT.NINH-KIEU,ward,phường\n"
    apply(db, data)
    with db.session() as session:
        assert unit(session, "ct.ninh-kieu.tan-an-2024").name == "Phường Tân An"


# --- the file: every bad row, with its line, and nothing written ----------------------------


@pytest.mark.parametrize(
    ("rows", "line", "column", "words"),
    [
        ("ct.khong-co,ct.moi,Mới,ct,ward,phường\n", 2, "old_code", "Unknown unit code ct.khong-co"),
        (",ct.moi,Mới,ct,ward,phường\n", 2, "old_code", "old code is empty"),
        ("ct.ninh-kieu.an-hoi,ct.moi,Mới,ct,ward,phường\nct.ninh-kieu.an-hoi,ct.moi,,,,\n", 3, "old_code", "listed twice (first on line 2)"),
        ("ct.ninh-kieu.an-hoi,ct.moi,,ct.ninh-kieu,ward,phường\n", 2, "new_name", "needs a new_name"),
        ("ct.ninh-kieu.an-hoi,ct.moi,Mới,,ward,phường\n", 2, "new_parent_code", "needs a new_parent_code"),
        ("ct.ninh-kieu.an-hoi,ct.moi,Mới,ct.khong-co,ward,phường\n", 2, "new_parent_code", "Unknown parent unit ct.khong-co"),
        ("ct.ninh-kieu.an-hoi,CT MỚI!,Mới,ct,ward,phường\n", 2, "new_code", "may hold only"),
        ("ct.ninh-kieu.an-hoi,ct.moi,Mới,ct,ward,phường\nct.ninh-kieu.an-lac,ct.moi,Khác,,,\n", 3, "new_name", "already has new_name Mới on line 2"),
        ("ct.ninh-kieu.an-hoi,,Mới,,,\n", 2, "new_name", "empty new_code dissolves"),
        ("ct.ninh-kieu,ct.ninh-kieu,,ct.ninh-kieu.cai-khe,,\n", 2, "new_parent_code", "cycle"),
        ("ct.ninh-kieu,ct.ninh-kieu.cai-khe,,,,\n", 2, "new_code", "lies below ct.ninh-kieu, which merges into it"),
        ("ct.ninh-kieu.an-hoi,ct.a,A,ct.b,ward,phường\nct.ninh-kieu.an-lac,ct.b,B,ct.a,ward,phường\n", 2, "new_parent_code", "cycle"),
        ("ct.thot-not,,,,,\n", 2, "old_code", "ct.thot-not is dissolved but units below it stay active: ct.thot-not.thot-not"),
        ("ct.ninh-kieu.tan-an,,,,,\n", 2, "old_code", "Accounts still belong to ct.ninh-kieu.tan-an: canbo.tanan"),
        ("ct.ninh-kieu.an-hoi,ct.ninh-kieu.tan-an,,,,\nct.ninh-kieu.tan-an,ct.ninh-kieu.an-lac,,,,\n", 2, "new_code", "itself merged or dissolved on line 3"),
        ("ct.ninh-kieu.an-hoi,ct.moi,Mới,ct.ninh-kieu.an-lac,ward,phường\nct.ninh-kieu.an-lac,ct.moi,,,,\n", 2, "new_parent_code", "merged or dissolved on line 3"),
        ("ct.ninh-kieu.an-hoi,thuky,Mới,ct,ward,phường\n", 2, "new_code", "thuky is already the username of an account"),
        ("ct.ninh-kieu.an-hoi,ct.moi," + "x" * 201 + ",ct,ward,phường\n", 2, "new_name", "too long"),
        ("ct.ninh-kieu.an-hoi,ct.moi,Mới,ct,ward\n", 2, "", "Expected 6 values, found 5"),
    ],
)
def test_each_bad_row_is_reported_with_its_line_and_nothing_is_written(
    db: Database, rows: str, line: int, column: str, words: str
) -> None:
    before = snapshot(db)
    with pytest.raises(ImportFailed) as caught:
        apply(db, HEADER + rows)
    found = [(e.line, e.column, str(e.message)) for e in caught.value.errors]
    assert any(e_line == line and e_column == column and words in message for e_line, e_column, message in found), found
    assert snapshot(db) == before


def test_units_merged_before_can_neither_be_reorganised_again_nor_take_in_units(db: Database) -> None:
    apply(db, HEADER + "ct.ninh-kieu.an-hoi,ct.ninh-kieu.an-lac,,,,\n")
    before = snapshot(db)
    text = HEADER + "ct.ninh-kieu.an-hoi,ct.ninh-kieu.cai-khe,,,,\nct.ninh-kieu.an-phu,ct.ninh-kieu.an-hoi,,,,\n"
    with pytest.raises(ImportFailed) as caught:
        apply(db, text)
    assert [(e.line, e.column) for e in caught.value.errors] == [(2, "old_code"), (3, "new_code")]
    assert "already merged or dissolved" in str(caught.value.errors[0].message)
    assert "use a new code" in str(caught.value.errors[1].message)
    assert snapshot(db) == before


def test_all_bad_rows_are_reported_at_once_in_line_order(db: Database) -> None:
    text = HEADER + (
        "ct.ninh-kieu.an-hoi,ct.ninh-kieu.tan-an-2024,Phường Tân An,ct.ninh-kieu,ward,phường\n"
        "ct.khong-co,ct.ninh-kieu.tan-an-2024,,,,\n"
        "ct.ninh-kieu.an-lac,ct.ninh-kieu.tan-an-2024,,,,\n"
        "ct.thot-not,,,,,\n"
        "ct.ninh-kieu.an-lac,,,,,\n"
    )
    before = snapshot(db)
    with pytest.raises(ImportFailed) as caught:
        apply(db, text)
    assert [e.line for e in caught.value.errors] == [3, 5, 6]
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", "empty"), (HEADER.encode(), "no rows"), (b"old,new\nct,ct\n", "header must name the columns")],
)
def test_an_empty_or_wrongly_headed_file_is_refused(db: Database, data: bytes, words: str) -> None:
    with pytest.raises(ImportFailed) as caught, db.session() as session:
        reorganise.apply_file(session, data, actor=None, batch="x")
    assert words in str(caught.value.errors[0].message)


# --- one unit at a time ---------------------------------------------------------------------


def test_rename_keeps_the_code_records_history_and_audit(db: Database) -> None:
    with db.session() as session:
        admin = user(session, "admin")
        tan_an = unit(session, "ct.ninh-kieu.tan-an")
        assert reorganise.rename(session, tan_an, unicodedata.normalize("NFD", " Phường Tân An  mới "), actor=admin)
        assert not reorganise.rename(session, tan_an, "Phường Tân An mới", actor=admin)  # nothing to do
    with db.session() as session:
        tan_an = unit(session, "ct.ninh-kieu.tan-an")
        assert tan_an.name == "Phường Tân An mới"
        assert [(h.action, h.old_value, h.new_value, h.actor) for h in service.history(session, tan_an)][-1] == (
            "rename", "Phường Tân An", "Phường Tân An mới", "admin",
        )
        assert user(session, "ct.ninh-kieu.tan-an").full_name == "Phường Tân An mới"
        entry = audit_details(session, "unit_renamed")
        assert [(e["target"], e["old"], e["new"]) for e in entry] == [("ct.ninh-kieu.tan-an", "Phường Tân An", "Phường Tân An mới")]


@pytest.mark.parametrize(("name", "words"), [("   ", "empty"), ("x" * 201, "At most 200")])
def test_rename_refuses_an_empty_or_long_name(db: Database, name: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught, db.session() as session:
        reorganise.rename(session, unit(session, "ct.ninh-kieu.tan-an"), name, actor=None)
    assert words in str(caught.value.fields["name"])


def test_move_carries_the_subtree_and_refuses_cycles_and_inactive_parents(db: Database) -> None:
    with db.session() as session:
        reorganise.move(session, unit(session, "ct.ninh-kieu"), unit(session, "ct.so-tttt"), actor=None)
    with db.session() as session:
        assert service.is_within(session, unit(session, "ct.ninh-kieu.tan-an").id or 0, unit(session, "ct.so-tttt").id or 0)
        assert audit_details(session, "unit_moved")[0]["new"] == "ct.so-tttt"
    for target in ("ct.ninh-kieu", "ct.ninh-kieu.cai-khe"):
        with pytest.raises(InvalidInput) as caught, db.session() as session:
            reorganise.move(session, unit(session, "ct.ninh-kieu"), unit(session, target), actor=None)
        assert "cannot be moved under itself" in str(caught.value.fields["parent"])
    apply(db, HEADER + "ct.ninh-kieu.an-hoi,ct.ninh-kieu.an-lac,,,,\n")
    with pytest.raises(Conflict) as refused, db.session() as session:
        reorganise.move(session, unit(session, "ct.ninh-kieu.an-phu"), unit(session, "ct.ninh-kieu.an-hoi"), actor=None)
    assert "merged or dissolved" in str(refused.value.fields["parent"])


def test_merge_moves_children_and_people_disables_the_endpoint_and_keeps_the_old_row(db: Database) -> None:
    with db.session() as session:
        admin = user(session, "admin")
        outcome = reorganise.merge(session, unit(session, "ct.ninh-kieu"), unit(session, "ct.binh-thuy"), actor=admin, ip="10.0.0.9")
    assert len(outcome.children) == 13 and outcome.people == ["thuky.ninhkieu"]
    with db.session() as session:
        ninh_kieu, binh_thuy = unit(session, "ct.ninh-kieu"), unit(session, "ct.binh-thuy")
        assert (ninh_kieu.active, ninh_kieu.name, ninh_kieu.merged_into_id) == (False, "Quận Ninh Kiều", binh_thuy.id)
        assert len(service.children(session, binh_thuy)) == 8 + 13
        assert user(session, "thuky.ninhkieu").unit_id == binh_thuy.id
        assert user(session, "ct.ninh-kieu").active is False and user(session, "ct.binh-thuy").active
        assert service.history(session, ninh_kieu)[-1].action == "merge"
        assert service.history(session, binh_thuy)[-1].old_value == "ct.ninh-kieu"
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "unit_merged")).one()
        assert (entry.actor, entry.ip, json.loads(entry.detail)["people"]) == ("admin", "10.0.0.9", ["thuky.ninhkieu"])
        # renaming the successor later does not touch the name the merged unit's records saw
        reorganise.rename(session, binh_thuy, "Phường Bình Thủy mới", actor=admin)
        assert unit(session, "ct.ninh-kieu").name == "Quận Ninh Kiều"


@pytest.mark.parametrize(
    ("code", "into", "error", "words"),
    [
        ("ct.ninh-kieu", "ct.ninh-kieu", InvalidInput, "into itself"),
        ("ct.ninh-kieu", "ct.ninh-kieu.tan-an", InvalidInput, "lies below this unit"),
        ("ct.ninh-kieu.an-phu", "ct.ninh-kieu.an-hoi", Conflict, "merged or dissolved"),
        ("ct.ninh-kieu.an-hoi", "ct.ninh-kieu.an-phu", Conflict, "merged or dissolved"),
    ],
)
def test_merge_refuses_itself_its_descendants_and_inactive_units(
    db: Database, code: str, into: str, error: type[Exception], words: str
) -> None:
    apply(db, HEADER + "ct.ninh-kieu.an-hoi,ct.ninh-kieu.an-lac,,,,\n")
    before = snapshot(db)
    with pytest.raises(error) as caught, db.session() as session:
        reorganise.merge(session, unit(session, code), unit(session, into), actor=None)
    assert isinstance(caught.value, InvalidInput | Conflict)
    assert words in str(caught.value.fields["into"])
    assert snapshot(db) == before


def test_dissolve_is_refused_while_units_or_people_still_belong_to_it(db: Database) -> None:
    with pytest.raises(Conflict) as caught, db.session() as session:
        reorganise.dissolve(session, unit(session, "ct.ninh-kieu"), actor=None)
    assert "ct.ninh-kieu.cai-khe, ct.ninh-kieu.an-hoa" in str(caught.value.fields["dissolve"])
    assert str(caught.value.fields["dissolve"]).count("ct.ninh-kieu.") == 10  # of 13 wards: the rest counted
    assert "(+3)" in str(caught.value.fields["dissolve"])
    with pytest.raises(Conflict) as caught, db.session() as session:
        reorganise.dissolve(session, unit(session, "ct.ninh-kieu.tan-an"), actor=None)
    assert "canbo.tanan" in str(caught.value.fields["dissolve"])
    with db.session() as session:
        accounts.set_active(session, user(session, "canbo.tanan"), False, actor=None)
        reorganise.dissolve(session, unit(session, "ct.ninh-kieu.tan-an"), actor=None)
    with db.session() as session:
        tan_an = unit(session, "ct.ninh-kieu.tan-an")
        assert (tan_an.active, tan_an.merged_into_id, tan_an.name) == (False, None, "Phường Tân An")
        assert user(session, "ct.ninh-kieu.tan-an").active is False
        assert user(session, "canbo.tanan").unit_id == tan_an.id  # a disabled account stays where it was
        assert [e["target"] for e in audit_details(session, "unit_dissolved")] == ["ct.ninh-kieu.tan-an"]


# --- the command line -----------------------------------------------------------------------


def test_the_reorganise_command_prints_counts_or_line_numbered_errors(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIAOBAN_DATABASE_URL", settings.database_url)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "ct.ninh-kieu.an-hoi,ct.moi,Mới,ct.khong-co,ward,phường\n", encoding="utf-8")
    assert main(["reorganise-units", str(bad)]) == 1
    assert "line 2 (new_parent_code): Unknown parent unit ct.khong-co." in capsys.readouterr().err
    assert main(["reorganise-units", str(EXAMPLE)]) == 0
    assert "1 created, 3 merged, 0 renamed, 0 moved, 0 dissolved" in capsys.readouterr().out
    database = Database(settings.database_url)
    with database.session() as session:
        assert unit(session, "ct.ninh-kieu.tan-an").merged_into_id == unit(session, "ct.ninh-kieu.tan-an-2024").id
        assert service.history(session, unit(session, "ct.ninh-kieu.tan-an"))[-1].batch == "example-merge-into-new-ward.csv"
    database.dispose()
    assert main(["reorganise-units", str(EXAMPLE)]) == 1  # the old units are merged already
    assert "already merged or dissolved" in capsys.readouterr().err
