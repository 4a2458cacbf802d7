"""Every visible string of the shop is in the message catalogs (Babel), none in templates."""

from __future__ import annotations

import re
from pathlib import Path

from tuanbox.shop import catalogs, i18n
from tuanbox.shop.render import TEMPLATES

JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
# `{% block page %}name{% endblock %}`: the page's id for data-page, not words to read.
PAGE_ID = re.compile(r"\{%\s*block page\s*%\}[\w-]*\{%\s*endblock\s*%\}")
TAG = re.compile(r"<[^>]*>", re.S)
# Attributes a person reads or hears: their values must come from the catalogs too.
READ_ATTRS = re.compile(r'\b(?:alt|title|aria-label|placeholder)="([^"]*)"')
WORDS = re.compile(r"[A-Za-z]{2,}|[\u3400-\u9fff]")
# Quoted text inside Jinja expressions (`{{ c.notice("Sold out") }}`), other than what _()
# translates: prose is a CJK character, a capitalised word or two words in a row.
EXPR = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
GETTEXT = re.compile(r"""\b(?:_|gettext|ngettext)\(\s*(?:"[^"]*"|'[^']*')""")
LITERAL = re.compile(r""""([^"]*)"|'([^']*)'""")
PROSE = re.compile(r"[\u3400-\u9fff]|\b[A-Z][a-z]+\b|[A-Za-z]{2,}\s+[A-Za-z]{2,}")
# The language switch names each language in itself, whatever the page's language.
ENDONYMS = {"中文", "English"}


def hard_coded(text: str) -> list[str]:
    """Words left once Jinja expressions and tags are gone: text no catalog translates."""
    plain = JINJA.sub(" ", PAGE_ID.sub(" ", text))
    found = [v for v in READ_ATTRS.findall(plain) if WORDS.search(v)]
    body = TAG.sub(" ", plain)
    found += [w for w in body.split() if WORDS.search(w) and not w.startswith("&")]
    return found


def quoted_prose(text: str) -> list[str]:
    """Quoted words inside Jinja expressions that no _() call carries to the catalogs."""
    found = []
    for expr in EXPR.findall(text):
        rest = GETTEXT.sub("_(", expr)
        found += [a or b for a, b in LITERAL.findall(rest) if PROSE.search(a or b)]
    return [f for f in found if f not in ENDONYMS]


def test_templates_hold_no_hard_coded_words() -> None:
    leaks = {
        p.name: hard_coded(p.read_text()) + quoted_prose(p.read_text())
        for p in Path(TEMPLATES).glob("*.html")
    }
    assert {name: words for name, words in leaks.items() if words} == {}


def test_the_check_sees_hard_coded_words() -> None:
    assert hard_coded('<p>{{ _("Hi") }} there</p>') == ["there"]
    assert hard_coded('<img alt="a photo" src="{{ x }}">') == ["a photo"]
    assert hard_coded('<p class="x">{{ _("Hi") }} · ¥</p>') == []
    assert quoted_prose('{{ c.notice("Sold out", "error") }}') == ["Sold out"]
    assert quoted_prose("{% set done = '已结束' %}") == ["已结束"]
    assert quoted_prose('{{ c.notice(_("Sold out"), "error") }}') == []
    assert quoted_prose("{{ _('%(n)s left', n='%(n)s') }}{{ static_url('shop.css') }}") == []


def test_every_string_is_in_both_catalogs_and_chinese_is_complete() -> None:
    assert catalogs.problems() == []


def test_catalogs_load_and_translate() -> None:
    assert i18n.translations("zh").gettext("Today's picks") == "今日必拼"
    assert i18n.translations("en").gettext("Today's picks") == "Today's picks"


def test_every_order_and_return_state_has_words_in_both_languages() -> None:
    """The orders list and order page say each state in words, never the raw status."""
    from sqlalchemy import CheckConstraint

    from tuanbox.orders.domain import Awaiting, OrderStatus
    from tuanbox.returns.models import ReturnRequest
    from tuanbox.shop.orderview import return_words, status_words

    zh, en = i18n.gettext_for("zh"), i18n.gettext_for("en")
    cjk = re.compile(r"[\u3400-\u9fff]")
    states = [(s.value, None) for s in OrderStatus] + [("paid", a.value) for a in Awaiting]
    for status, awaiting in states:
        said_zh, said_en = status_words(zh, status, awaiting), status_words(en, status, awaiting)
        assert said_en not in (status, awaiting) and "_" not in said_en, (status, said_en)
        assert cjk.search(said_zh), (status, said_zh)
    # Each wait of a paid order says what it waits for.
    assert len({status_words(en, "paid", a.value) for a in Awaiting}) == len(Awaiting)
    (known,) = [
        set(re.findall(r"'(\w+)'", str(c.sqltext)))
        for c in ReturnRequest.__table__.constraints
        if isinstance(c, CheckConstraint) and str(c.sqltext).startswith("status IN")
    ]
    assert "requested" in known and "refunded" in known
    for status in known:
        assert return_words(en, status) != status and cjk.search(return_words(zh, status))
