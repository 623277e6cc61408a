"""Every string the room's JavaScript shows, marked for the one translation catalogue. Pages
embed them translated (``strings``), and the scripts look them up by their English text, so no
prose lives in the JavaScript. Placeholders are ``{name}``, filled in by the script."""

from __future__ import annotations

from server.i18n import N_, Text, Translations

JS_MESSAGES: list[Text] = [
    N_("Connecting…"),
]


def catalogue(translations: Translations) -> dict[str, str]:
    return {m.msgid: translations.gettext(m.msgid) for m in JS_MESSAGES}
