"""One translation catalogue: every string in the code and templates is in it, translated to
Vietnamese, with its placeholders intact; no text is hard-coded in templates."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from server.i18n import Catalogues, load_translations

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)[sd]")


def extracted_msgids() -> set[str]:
    method_map = [
        ("server/**.py", "python"),
        ("web/templates/**.html", "jinja2"),
        ("web/static/js/**.js", "javascript"),
    ]
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "t": None}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalogue(locale: str):  # type: ignore[no-untyped-def]
    with (ROOT / "web/translations" / locale / "LC_MESSAGES/messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def test_every_string_in_the_code_has_a_vietnamese_translation() -> None:
    vi = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in catalogue("vi") if m.id}
    missing = sorted(m for m in extracted_msgids() if m not in vi or not (vi[m].string[0] if isinstance(vi[m].string, tuple) else vi[m].string))
    assert not missing, f"{len(missing)} strings need `make messages` and a Vietnamese translation: {missing[:10]}"


def test_both_catalogues_hold_the_same_strings() -> None:
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue("vi") if m.id} == {
        m.id if isinstance(m.id, str) else m.id[0] for m in catalogue("en") if m.id
    }


def test_translations_keep_every_placeholder() -> None:
    broken = []
    for message in catalogue("vi"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            if string and set(PLACEHOLDER.findall(string)) != wanted:
                broken.append(ids[0])
    assert not broken


def test_vietnamese_is_the_default_and_english_falls_back_to_the_source() -> None:
    catalogues = Catalogues()
    assert catalogues.get("xx").locale == "vi"
    assert catalogues.get("vi").gettext("Log in") == "Đăng nhập"
    assert catalogues.get("en").gettext("Log in") == "Log in"
    assert load_translations("en").ngettext("%(num)d unit", "%(num)d units", 2) == "%(num)d units"


TEMPLATE_CODE = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
HTML_TAG = re.compile(r"<[^>]+>", re.S)
CODE_BLOCKS = re.compile(r"<(pre|code)\b.*?</\1>", re.S)  # file formats and codes are not prose
ALLOWED_LITERALS = {"Tiếng Việt", "English"}  # each language names itself in the switch


def test_templates_hold_no_hard_coded_text() -> None:
    offenders = []
    for path in (ROOT / "web/templates").rglob("*.html"):
        text = HTML_TAG.sub(" ", CODE_BLOCKS.sub(" ", TEMPLATE_CODE.sub(" ", path.read_text(encoding="utf-8"))))
        for chunk in re.split(r"\s{2,}|\n", text):
            chunk = chunk.strip(" ·›‹—()/:")
            if re.search(r"[^\W\d_]{2,}", chunk) and chunk not in ALLOWED_LITERALS:
                offenders.append(f"{path.relative_to(ROOT)}: {chunk!r}")
    assert not offenders


def test_the_hard_coded_text_check_sees_text(tmp_path: Path) -> None:
    sample = '<p>{{ _("Fine") }}</p><p>Không dịch</p>'
    text = HTML_TAG.sub(" ", TEMPLATE_CODE.sub(" ", sample))
    assert "Không dịch" in text and "Fine" not in text


def test_every_string_the_room_scripts_show_is_in_the_catalogue() -> None:
    """The room's JavaScript looks its strings up in the page's catalogue by their English text
    (``t("…")``): each one must be listed in ``server.rooms.jsmessages`` so it is extracted and
    translated, and nothing listed may be left unused."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract

    from server.rooms.jsmessages import JS_MESSAGES

    keywords = {**DEFAULT_KEYWORDS, "t": None}
    used: set[str] = set()
    scripts = sorted((ROOT / "web" / "static" / "js").rglob("*.js"))  # room/ too
    assert scripts
    for path in scripts:
        with path.open("rb") as f:
            for _line, message, _comments, _context in extract("javascript", f, keywords=keywords):
                used.add(message if isinstance(message, str) else message[0])
    listed = {m.msgid for m in JS_MESSAGES}
    assert used - listed == set(), "t() strings missing from server/rooms/jsmessages.py"
    assert listed - used == set(), "strings listed in server/rooms/jsmessages.py that no script uses"
