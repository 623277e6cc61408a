"""One translation catalogue (gettext ``.po`` files under ``web/translations``) for pages,
JSON error messages and the strings the page scripts use.

Source strings are English; Vietnamese is the default locale. The ``.po`` files are read
directly with Babel at start-up, so running the product needs no compile step.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "web" / "translations"
LOCALES = ("vi", "en")
LANG_COOKIE = "giaoban_lang"


@dataclass(frozen=True)
class Text:
    """A message to translate later, when the reader's locale is known."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        params = {k: str(v) for k, v in self.params.items()}
        return self.msgid.format(**params) if params else self.msgid

    def render(self, translations: Translations) -> str:
        text = translations.gettext(self.msgid)
        # A parameter may itself be a message ("Weekly" inside "{frequency}, 12 times").
        params = {k: v.render(translations) if isinstance(v, Text) else v for k, v in self.params.items()}
        return text.format(**params) if params else text


def N_(msgid: str, **params: Any) -> Text:
    """Mark ``msgid`` for extraction; it is translated when shown."""
    return Text(msgid, params)


def render(message: Text | str, translations: Translations) -> str:
    return message.render(translations) if isinstance(message, Text) else message


class Translations:
    """gettext over a Babel catalogue, with the callables Jinja's i18n extension expects."""

    def __init__(self, locale: str, messages: dict[str, str | tuple[str, ...]], plural: Any) -> None:
        self.locale = locale
        self._messages = messages
        self._plural = plural

    def gettext(self, message: str) -> str:
        found = self._messages.get(message)
        return found if isinstance(found, str) and found else message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        found = self._messages.get(singular)
        if isinstance(found, tuple) and all(found):
            return found[min(int(self._plural(n)), len(found) - 1)]
        return singular if n == 1 else plural

    def strings(self) -> dict[str, str]:
        """Every singular translation, for the page scripts."""
        return {k: v for k, v in self._messages.items() if isinstance(v, str) and v}


def load_translations(locale: str, directory: Path = TRANSLATIONS_DIR) -> Translations:
    path = directory / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    messages: dict[str, str | tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = str(message.id[0] if isinstance(message.id, (tuple, list)) else message.id)
        string = message.string
        messages[key] = tuple(str(s) for s in string) if isinstance(string, (tuple, list)) else str(string or "")
    return Translations(locale, messages, _plural_function(catalog.plural_expr or "(n != 1)"))


def _plural_function(expr: str) -> Any:
    # The catalogues are ours and use C-like expressions that are also Python ("0",
    # "(n != 1)"); anything else is refused rather than evaluated.
    if not set(expr) <= set("n0123456789 !=<>()%&|"):
        raise ValueError(f"unsupported plural expression: {expr!r}")
    code = compile(expr.replace("&&", " and ").replace("||", " or "), "<plural>", "eval")
    return lambda n: int(eval(code, {"__builtins__": {}}, {"n": n}))


class Catalogues:
    def __init__(self, directory: Path = TRANSLATIONS_DIR) -> None:
        self._by_locale = {locale: load_translations(locale, directory) for locale in LOCALES}

    def get(self, locale: str) -> Translations:
        return self._by_locale.get(locale) or self._by_locale[LOCALES[0]]


current_translations: ContextVar[Translations] = ContextVar("current_translations")
"""The catalogue of the request (or mail) being rendered: set by the request middleware."""
