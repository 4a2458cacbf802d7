"""The GS1 Digital Link resolver against the behaviours of the GS1-Conformant resolver
standard: default link, linkType selection, linkset (RFC 9264), Link header, 400 and 404."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.trace.conftest import Shop
from tests.traceability import factories as tf
from tuanbox.catalog.models import Lot
from tuanbox.settings import Settings
from tuanbox.trace import resolver

LOT_PATH = f"/01/{tf.GTIN}/10/{tf.LOT}"
TRACE = f"/trace/lot/{tf.GTIN}/{tf.LOT}"
PIP = f"/product/{tf.GTIN}"


@pytest.fixture
def client(trace_app: FastAPI) -> TestClient:
    return TestClient(trace_app, follow_redirects=False)


def test_default_link_of_a_lot_is_its_trace_page(client: TestClient, shop: Shop) -> None:
    reply = client.get(LOT_PATH)
    assert reply.status_code == 307
    assert reply.headers["location"] == TRACE
    link = reply.headers["link"]
    assert f'<http://127.0.0.1:8000{LOT_PATH}?linkType=all>; rel="linkset"' in link
    assert 'type="application/linkset+json"' in link
    assert f'<http://127.0.0.1:8000{TRACE}>; rel="https://gs1.org/voc/defaultLink"' in link
    assert f'<http://127.0.0.1:8000{TRACE}>; rel="https://gs1.org/voc/traceability"' in link
    assert f'<http://127.0.0.1:8000{PIP}>; rel="https://gs1.org/voc/pip"' in link


@pytest.mark.parametrize(
    ("asked", "where"),
    [
        ("gs1:traceability", TRACE),
        ("https://gs1.org/voc/traceability", TRACE),
        ("https://ref.gs1.org/voc/traceability", TRACE),
        ("gs1:pip", PIP),
        ("https://www.gs1.org/voc/pip", PIP),
        ("gs1:defaultLink", TRACE),
    ],
)
def test_link_type_selects_the_target(
    client: TestClient, shop: Shop, asked: str, where: str
) -> None:
    reply = client.get(LOT_PATH, params={"linkType": asked})
    assert reply.status_code == 307, reply.text
    assert reply.headers["location"] == where


def test_unknown_link_type_falls_back_to_the_default_with_a_note(
    client: TestClient, shop: Shop
) -> None:
    for asked in ("gs1:epil", "nonsense"):
        reply = client.get(LOT_PATH, params={"linkType": asked})
        assert reply.status_code == 307
        assert reply.headers["location"] == TRACE
        assert f"no link of type '{asked}'" in reply.text


def test_other_query_parameters_go_on_to_the_target(client: TestClient, shop: Shop) -> None:
    reply = client.get(LOT_PATH, params={"linkType": "gs1:pip", "utm_source": "pack", "x": "1"})
    assert reply.headers["location"] == f"{PIP}?utm_source=pack&x=1"


def test_link_type_all_answers_the_linkset(client: TestClient, shop: Shop) -> None:
    for reply in (
        client.get(LOT_PATH, params={"linkType": "all"}),
        client.get(LOT_PATH, headers={"Accept": "application/linkset+json"}),
    ):
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/linkset+json"
        body = reply.json()
        # RFC 9264 §4.2: an object with one "linkset" array of link context objects.
        assert list(body) == ["linkset"] and len(body["linkset"]) == 1
        context = body["linkset"][0]
        assert context["anchor"] == f"http://127.0.0.1:8000{LOT_PATH}"
        assert set(context) == {
            "anchor",
            resolver.DEFAULT_LINK,
            resolver.TRACEABILITY,
            resolver.PIP,
        }
        for relation in (resolver.DEFAULT_LINK, resolver.TRACEABILITY, resolver.PIP):
            targets = context[relation]
            assert isinstance(targets, list) and targets
            assert all(t["href"].startswith("http://127.0.0.1:8000/") for t in targets)
            assert all(t["type"] == "text/html" and t["hreflang"] == ["zh", "en"] for t in targets)
        assert context[resolver.TRACEABILITY][0]["href"].endswith(TRACE)
        assert context[resolver.DEFAULT_LINK] == context[resolver.TRACEABILITY]
        assert "Peaches" in context[resolver.PIP][0]["title"]


def test_a_bare_gtin_resolves_to_its_product_information(client: TestClient, shop: Shop) -> None:
    reply = client.get(f"/01/{tf.GTIN}")
    assert reply.status_code == 307 and reply.headers["location"] == PIP
    # A batch-level link type does not exist for the product: the default, with a note.
    reply = client.get(f"/01/{tf.GTIN}", params={"linkType": "gs1:traceability"})
    assert reply.status_code == 307 and reply.headers["location"] == PIP
    assert "no link of type" in reply.text
    linkset = client.get(f"/01/{tf.GTIN}", params={"linkType": "all"}).json()["linkset"][0]
    assert set(linkset) == {"anchor", resolver.DEFAULT_LINK, resolver.PIP}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/01/06901234567893/10/PEACH-2611", "gtin"),  # wrong check digit
        ("/01/6901234567892/10/PEACH-2611", "gtin"),  # GTIN-13: a DL path carries 14 digits
        ("/01/0690123456789X/10/PEACH-2611", "gtin"),
        ("/01/06901234567893", "gtin"),
        (f"/01/{tf.GTIN}/10/A%5EB", "lot"),  # ^ is not in CSET 82
        (f"/01/{tf.GTIN}/10/" + "A" * 21, "lot"),  # AI (10) is at most 20 characters
        (f"/01/{tf.GTIN}/10/%E6%A1%83", "lot"),  # not ASCII
    ],
)
def test_malformed_identifiers_get_400_problems(client: TestClient, path: str, field: str) -> None:
    reply = client.get(path)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["code"] == "INVALID_DIGITAL_LINK" and problem["field"] == field


def test_cset82_lots_are_syntactically_fine(
    client: TestClient, shop: Shop, db_session: Session
) -> None:
    # A lot with CSET 82 punctuation passes the syntax check, then is simply unknown: 404.
    assert client.get(f"/01/{tf.GTIN}/10/A%2FB%3A1").status_code == 404
    db_session.add(Lot(product_id=shop.product.id, gtin=tf.GTIN, lot_code="L.2_6-1"))
    db_session.flush()
    reply = client.get(f"/01/{tf.GTIN}/10/L.2_6-1")
    assert reply.status_code == 307 and reply.headers["location"] == f"/trace/lot/{tf.GTIN}/L.2_6-1"


def test_unknown_items_get_404(client: TestClient, shop: Shop) -> None:
    assert client.get(f"/01/{tf.GTIN}/10/UNKNOWN").status_code == 404
    other = "06901234567809"  # valid check digit, not in the catalog
    assert client.get(f"/01/{other}").json()["code"] == "PRODUCT_NOT_FOUND"
    assert client.get(f"/01/{other}/10/{tf.LOT}").status_code == 404
    assert client.get(f"/product/{other}").status_code == 404


def test_following_the_default_link_lands_on_the_pages(
    trace_app: FastAPI, shop: Shop, settings: Settings
) -> None:
    browser = TestClient(trace_app)  # follows redirects
    page = browser.get(LOT_PATH, headers={"Accept": "text/html"})
    assert page.status_code == 200 and str(page.url).endswith(TRACE)
    assert "验证 Verify now" in page.text
    info = browser.get(LOT_PATH, params={"linkType": "gs1:pip"}, headers={"Accept": "text/html"})
    assert info.status_code == 200 and str(info.url).endswith(PIP)
    assert shop.merchant.name in info.text and f'href="{TRACE}"' in info.text


def test_resolver_identifier_checks() -> None:
    assert resolver.gtin14(tf.GTIN) == tf.GTIN
    punctuation = "!\"%&'()*+,-./:;<=>?_"  # all of CSET 82 that is not a letter or digit
    assert resolver.lot_ai10(punctuation) == punctuation
    with pytest.raises(resolver.InvalidDigitalLinkError):
        resolver.lot_ai10("A B")  # space is not in CSET 82
    assert resolver.link_type("gs1:pip") == resolver.PIP
    assert resolver.link_type("pip") is None
    assert resolver.link_type("gs1:") is None
