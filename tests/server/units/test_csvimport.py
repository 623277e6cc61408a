"""Importing units from CSV: the shipped map, every kind of bad row, and nothing half-written."""

from __future__ import annotations

import unicodedata

import pytest
from sqlmodel import Session, func, select

from server.__main__ import main
from server.csvfile import ImportFailed
from server.db import Database
from server.demo import UNITS_FILE
from server.units import service
from server.units.csvimport import import_units
from server.units.models import Unit, UnitChange

HEADER = "code,parent_code,level,kind,name\n"


@pytest.fixture
def empty_db(tmp_path) -> Database:  # type: ignore[no-untyped-def]
    from server.migrate import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade_to_head(url)
    return Database(url)


def count(session: Session, model: type) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_the_shipped_2016_map_has_the_city_9_districts_85_wards_and_21_departments(empty_db: Database) -> None:
    with empty_db.session() as session:
        result = import_units(session, UNITS_FILE.read_bytes())
    assert (result.created, result.updated) == (116, 0)
    with empty_db.session() as session:
        by_level = {level: len(service.search(session, level=level)[0]) for level in service.levels(session)}
        assert by_level == {"city": 1, "district": 9, "ward": 85, "department": 21}
        ninh_kieu = service.by_code(session, "ct.ninh-kieu")
        assert len(service.children(session, ninh_kieu)) == 13
        vhttdl = service.by_code(session, "ct.so-vhttdl")
        assert vhttdl.name == "Sở Văn hóa, Thể thao và Du lịch"  # the quoted comma survived


def test_reimporting_the_same_file_changes_nothing(empty_db: Database) -> None:
    data = UNITS_FILE.read_bytes()
    with empty_db.session() as session:
        import_units(session, data)
    with empty_db.session() as session:
        before = count(session, UnitChange)
        result = import_units(session, data)
        assert (result.created, result.updated, result.unchanged) == (0, 0, 116)
        assert count(session, UnitChange) == before


def test_names_are_stored_in_nfc_whatever_the_file_used(empty_db: Database) -> None:
    decomposed = unicodedata.normalize("NFD", "Phường Tân An")
    assert decomposed != "Phường Tân An"
    data = (HEADER + "ct,,city,thành phố,Thành phố Cần Thơ\n" + f"ct.tan-an,ct,ward,phường,  {decomposed} \n").encode()
    with empty_db.session() as session:
        import_units(session, data)
    with empty_db.session() as session:
        assert service.by_code(session, "ct.tan-an").name == "Phường Tân An"


def test_a_utf8_bom_is_accepted(empty_db: Database) -> None:
    with empty_db.session() as session:
        result = import_units(session, b"\xef\xbb\xbf" + (HEADER + "ct,,city,thành phố,Cần Thơ\n").encode())
    assert result.created == 1


@pytest.mark.parametrize(
    ("rows", "line", "column", "words"),
    [
        ("ct,,city,tp,Cần Thơ\nct.a,ct.nowhere,ward,phường,A\n", 3, "parent_code", "Unknown parent unit ct.nowhere"),
        ("ct,,city,tp,Cần Thơ\nct.a,ct,ward,phường,A\nct.a,ct,ward,phường,B\n", 4, "code", "Duplicate code ct.a (first on line 3)"),
        ("ct,,city,tp,Cần Thơ\nct.a,ct.b,ward,phường,A\nct.b,ct.a,ward,phường,B\n", 3, "parent_code", "cycle"),
        ("ct,,city,tp,Cần Thơ\nct.a,ct.a,ward,phường,A\n", 3, "parent_code", "own parent"),
        ("ct,,city,tp,Cần Thơ\nct.a,ct,ward,phường,   \n", 3, "name", "The name is empty"),
        ("ct,,city,tp,Cần Thơ\nct.a,ct,,phường,A\n", 3, "level", "The level is empty"),
        ("ct,,city,tp,Cần Thơ\n,ct,ward,phường,A\n", 3, "code", "The code is empty"),
        ("ct,,city,tp,Cần Thơ\nCT A!,ct,ward,phường,A\n", 3, "code", "may hold only"),
        ("ct,,city,tp,Cần Thơ\nct.a,ct,ward,A\n", 3, "", "Expected 5 values, found 4"),
    ],
)
def test_each_bad_row_is_reported_with_its_line_and_nothing_is_written(
    empty_db: Database, rows: str, line: int, column: str, words: str
) -> None:
    with pytest.raises(ImportFailed) as caught, empty_db.session() as session:
        import_units(session, (HEADER + rows).encode())
    assert any(e.line == line and e.column == column and words in str(e.message) for e in caught.value.errors), [
        (e.line, e.column, str(e.message)) for e in caught.value.errors
    ]
    with empty_db.session() as session:
        assert count(session, Unit) == 0
        assert count(session, UnitChange) == 0


def test_all_errors_are_reported_at_once(empty_db: Database) -> None:
    rows = "ct,,city,tp,Cần Thơ\nct.a,ct.x,ward,phường,A\nct.b,ct,ward,phường,\nct.a,ct,ward,phường,C\n"
    with pytest.raises(ImportFailed) as caught, empty_db.session() as session:
        import_units(session, (HEADER + rows).encode())
    assert sorted(e.line for e in caught.value.errors) == [3, 4, 5]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"code,name\nct,Can Tho\n", "header must name the columns"),
        ("code,parent_code,level,kind,name\nct,,city,tp,C\xe1n\n".encode("latin-1"), "not UTF-8"),
        (b"\x00\x01\x02PK binary", "not a text CSV"),
        (HEADER.encode() + b'ct,,city,tp,"unterminated\n', "Malformed CSV"),
    ],
)
def test_a_hostile_or_malformed_file_is_refused(empty_db: Database, data: bytes, words: str) -> None:
    with pytest.raises(ImportFailed) as caught, empty_db.session() as session:
        import_units(session, data)
    assert words in " ".join(str(e.message) for e in caught.value.errors)
    with empty_db.session() as session:
        assert count(session, Unit) == 0


def test_a_bad_row_in_an_update_of_existing_units_leaves_them_as_they_were(empty_db: Database) -> None:
    with empty_db.session() as session:
        import_units(session, UNITS_FILE.read_bytes())
    update = HEADER + "ct.ninh-kieu,ct,district,quận,Quận Ninh Kiều mới\nct.x,ct.missing,ward,phường,X\n"
    with pytest.raises(ImportFailed), empty_db.session() as session:
        import_units(session, update.encode())
    with empty_db.session() as session:
        assert service.by_code(session, "ct.ninh-kieu").name == "Quận Ninh Kiều"


def test_an_update_that_closes_a_cycle_through_the_database_is_refused(empty_db: Database) -> None:
    with empty_db.session() as session:
        import_units(session, UNITS_FILE.read_bytes())
    update = HEADER + "ct,ct.ninh-kieu.tan-an,city,thành phố,Thành phố Cần Thơ\n"
    with pytest.raises(ImportFailed) as caught, empty_db.session() as session:
        import_units(session, update.encode())
    assert "cycle" in str(caught.value.errors[0].message)
    with empty_db.session() as session:
        assert service.by_code(session, "ct").parent_id is None


def test_the_import_command_reports_line_numbers_and_exit_status(
    empty_db: Database, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("GIAOBAN_DATABASE_URL", empty_db.url)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "ct,,city,tp,Cần Thơ\nct.a,ct.zz,ward,phường,A\n", encoding="utf-8")
    assert main(["import-units", str(bad)]) == 1
    assert "line 3 (parent_code): Unknown parent unit ct.zz." in capsys.readouterr().err
    assert main(["import-units", str(UNITS_FILE)]) == 0
    assert "116 created" in capsys.readouterr().out
    with empty_db.session() as session:
        # every unit got its endpoint account, named by its code
        from server.accounts.models import User

        assert count(session, User) == 116
        assert session.exec(select(User).where(User.username == "ct.ninh-kieu.tan-an")).one().role == "endpoint"
    assert main(["import-units", str(tmp_path / "missing.csv")]) == 1


def test_a_new_code_may_not_take_a_persons_username(app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportFailed) as caught, app.state.giaoban.db.session() as session:
        import_units(session, (HEADER + "thuky,ct,ward,phường,Phường Thư Ký\n").encode())
    assert "already a person's username" in str(caught.value.errors[0].message)
