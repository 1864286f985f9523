"""The interface in the reader's language: gettext message catalogues, read with Babel.

Fixed strings are written in English where they are used and marked for extraction: `N_("…")`
in Python (a message built before anyone asked, translated at the edge), `_("…")` in the
`/embed` template and `t("…")` in the pages' scripts (`web/static/*.js`). `make i18n` extracts
them into `locales/messages.pot` and updates each `locales/<locale>/LC_MESSAGES/messages.po`;
the `.po` files are what the app reads (Babel compiles each in memory once), so there is no
compiled file to fall out of step with its source.

A reader's language is picked by `pick`: the widget's `data-lang` first, then the browser's
`Accept-Language`, then English. Errors carry their English template and its values
(`errors.AssistantError`), so `say` can translate a message that was formatted before the
reader's language was known. Nothing here reads the environment or a file at import time.
"""

from __future__ import annotations

import gettext
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

# The shipped languages: gettext locale names. "en" is the source language (no catalogue needed).
LOCALES = ("en", "zh_Hans", "ru", "ar")
DEFAULT = "en"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Marks `message` for extraction; it is translated later, where the reader's language is known."""
    return message


class Text(str):
    """An English message that keeps its template and values, so `say` can translate it after
    it was formatted: `Text(N_("Please try again in {wait} s."), wait=3)`. A value may be a
    `Text` itself (translated too)."""

    def __new__(cls, template: str, **params):
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template, text.params = template, params
        return text


@dataclass(frozen=True)
class Language:
    code: str  # gettext's name: "zh_Hans"
    tag: str  # BCP 47, for `<html lang>`: "zh-Hans"
    direction: str  # "ltr" or "rtl"


@cache
def language(code: str) -> Language:
    from babel import Locale

    locale = Locale.parse(code)
    return Language(code=code, tag=code.replace("_", "-"), direction=locale.text_direction)


def supported(tag: str) -> str | None:
    """The shipped locale for one BCP 47 tag ("zh-CN" → "zh_Hans", "ru-RU" → "ru"), or None.
    Chinese is matched by script: Simplified ("zh", "zh-CN", "zh-Hans", "zh-SG") yes, Traditional
    ("zh-TW", "zh-Hant") no: a reader of Traditional Chinese gets their next wish, not Simplified."""
    from babel import Locale, UnknownLocaleError

    tag = (tag or "").strip()
    if not tag or len(tag) > 35 or tag == "*":
        return None
    try:
        locale = Locale.parse(tag.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError, TypeError):
        return None
    if locale.language == "zh":
        return "zh_Hans" if (locale.script or "Hans") == "Hans" else None
    return locale.language if locale.language in LOCALES else None


def accepted(header: str | None) -> list[str]:
    """The tags of an `Accept-Language` header, most wanted first ("q=0" left out)."""
    wishes = []
    for i, item in enumerate((header or "")[:500].split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.strip() and q > 0:
            wishes.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(wishes)]


def pick(lang: str | None = None, accept_language: str | None = None) -> str:
    """The reader's locale: `lang` (a widget's `data-lang`) if shipped, else the first shipped
    language of `Accept-Language`, else English."""
    for tag in [lang or ""] + accepted(accept_language):
        code = supported(tag)
        if code:
            return code
    return DEFAULT


def of_request(request) -> str:
    """The locale a request's person reads: its `Accept-Language` (`/embed` sends the widget's
    `data-lang` so), else English. `request`: Starlette's or Gradio's (anything with `headers`)."""
    headers = getattr(request, "headers", None)
    return pick(None, headers.get("accept-language") if headers is not None else None)


@cache
def catalogue(code: str):
    """The Babel catalogue of `code` (its `.po` file); None for English, the source language."""
    from babel.messages.pofile import read_po

    if code == DEFAULT:
        return None
    if code not in LOCALES:
        raise ValueError(f"no catalogue for {code!r}: shipped are {', '.join(LOCALES)}")
    path = resources.files("assistant").joinpath("locales", code, "LC_MESSAGES", f"{DOMAIN}.po")
    with path.open("rb") as f:
        return read_po(f, locale=code, domain=DOMAIN)


@cache
def translations(code: str) -> gettext.NullTranslations:
    """`gettext`/`ngettext` in `code` (English: the messages as written)."""
    from babel.messages.mofile import write_mo
    from babel.support import Translations

    found = catalogue(code)
    if found is None:
        return gettext.NullTranslations()
    compiled = io.BytesIO()
    write_mo(compiled, found, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


_GROUPED = re.compile(r"\{(\w+):,\}")


def fill(code: str, text: str, **params) -> str:
    """`text.format(**params)`, numbers written as `code` writes them: "{count:,}" of 20000 is
    "20,000" in English, "20 000" in Russian (Babel's `format_decimal`)."""
    from babel.numbers import format_decimal

    if code != DEFAULT:
        grouped = set(_GROUPED.findall(text))
        text = _GROUPED.sub(r"{\1}", text)
        params = {k: format_decimal(v, locale=code) if k in grouped and isinstance(v, int) else v
                  for k, v in params.items()}
    return text.format(**params)


def say(code: str, message) -> str:
    """`message` (a str marked with `N_`, a `Text` or an `AssistantError`) in `code`; a message no
    catalogue holds comes back as it was."""
    t = translations(code)
    template = getattr(message, "template", None)
    if template is not None:
        text = t.gettext(template)
        params = {k: say(code, v) if isinstance(v, Text) else v for k, v in message.params.items()}
        try:
            return fill(code, text, **params) if params else text
        except (KeyError, IndexError, ValueError):  # a translation with a broken placeholder: the English
            return str(message)
    return t.gettext(str(message))


def answer_in(code: str, answer):
    """`answer` (a `schema.Answer`) with its fixed wording in `code`: a refusal's text and a
    notice; what the articles say stays as written."""
    from dataclasses import replace

    if code == DEFAULT:
        return answer
    return replace(answer, text=say(code, answer.text) if answer.refused else answer.text,
                   notice=say(code, answer.notice) if answer.notice else answer.notice)


def messages_of(code: str, source: str) -> dict[str, str]:
    """The translations of the strings marked in one file (`source`: the end of its path, e.g.
    "static/embed.js"), msgid → text, for a page to carry; {} in English. Found by where each
    message was extracted from."""
    found = catalogue(code)
    if found is None:
        return {}
    return {m.id: m.string for m in found if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
            and any(path.endswith(source) for path, _ in m.locations)}
