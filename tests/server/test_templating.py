"""Data embedded in pages: one way to put JSON in a ``<script>`` element, used everywhere."""

from __future__ import annotations

import json
import re

import pytest

from server.templating import TEMPLATES_DIR, script_json

HOSTILE = ["<!--<script>", "</script><script>alert(1)</script>", "]]>&amp;", "a\u2028b\u2029c", "Phường Tân An"]


@pytest.mark.parametrize("text", HOSTILE)
def test_embedded_json_reads_back_the_same_and_cannot_touch_the_element(text: str) -> None:
    value = {"title": text, "list": [text, 1, None]}
    embedded = str(script_json(value))
    assert not set("<>&") & set(embedded)
    assert json.loads(embedded) == value


def test_every_template_embeds_data_through_script_json() -> None:
    for path in TEMPLATES_DIR.rglob("*.html"):
        source = path.read_text(encoding="utf-8")
        assert "|safe" not in source.replace(" ", ""), f"{path}: |safe bypasses escaping"
        for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', source, re.S):
            assert re.fullmatch(r"\{\{\s*\w+\s*\|\s*script_json\s*\}\}", block.strip()), f"{path}: {block}"
