"""Languages on the demo's real data: ``lang`` and ``_`` accepted on every route, the server's
own texts in French and English with a stable code, and each source text saying its language."""

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import ROUTER_KEY, create_app
from aggregator.api.messages import (
    EXPLANATIONS,
    HINTS,
    MESSAGE_LANGUAGES,
    PROBLEM_DETAILS,
    PROBLEM_TITLES,
    UNAVAILABLE,
    WASTE_EXPLANATIONS,
)
from aggregator.api.routing import canonical_path

CONFIG_DIR = Path(__file__).parents[1] / "config"
SAN_FRANCISCO = "lat=37.7764&lon=-122.3949"


@pytest.fixture
async def client():
    """The demo configuration (languages fr, en), every source loaded once, no polling."""
    runtime = runtime_from((CONFIG_DIR / "demo.yaml").read_text(), base_dir=CONFIG_DIR)
    for source_id in runtime.connectors:
        assert (await runtime.poll_once(source_id)).outcome == "changed", source_id
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


def public_get_paths(client) -> list[str]:
    """Every GET route the router declares, path parameters filled with a placeholder id."""
    router = client.server.app[ROUTER_KEY]
    return [
        re.sub(r"\{\w+\}", "demo:nothing", canonical_path(route.path))
        for route in router.routes()
        if route.method == "GET"
    ]


async def problem_parameters(response) -> list[str]:
    if response.status != 400:
        return []
    problem = await response.json(content_type=None)
    return [error["parameter"] for error in problem.get("errors", [])]


async def test_lang_and_cache_buster_accepted_on_every_route(client):
    """``?lang=en&_=…`` changes no route's status (an interceptor adding them to every call
    broke every transit screen with a 400); a misspelt parameter is still refused everywhere."""
    paths = public_get_paths(client)
    assert len(paths) > 20  # the router's routes, not a hand list
    for path in paths:
        plain = await client.get(path)
        await plain.read()
        with_both = await client.get(path, params={"lang": "en", "_": "1733300000000"})
        assert with_both.status == plain.status, path
        assert not {"lang", "_"} & set(await problem_parameters(with_both)), path
        typo = await client.get(path, params={"lang": "en", "langg": "en"})
        assert typo.status == 400, path
        assert await problem_parameters(typo) == ["langg"], path


async def test_lang_is_checked_the_same_way_on_routes_without_translations(client):
    """A route with nothing translated still refuses a language the server does not serve,
    with the pattern the OpenAPI document gives for ``lang`` on that route."""
    refused = await client.get("/v1/stops", params={"q": "gare", "lang": "de"})
    assert refused.status == 400
    assert await problem_parameters(refused) == ["lang"]
    accepted = await client.get("/v1/stops", params={"q": "gare", "lang": "EN-gb"})
    assert accepted.status == 200
    document = await (await client.get("/v1/openapi.json")).json()
    stops = document["paths"]["/v1/stops"]["get"]["parameters"]
    lang = next(p for p in stops if p["name"] == "lang")
    assert re.fullmatch(lang["schema"]["pattern"], "EN-gb")
    assert not re.fullmatch(lang["schema"]["pattern"], "de")
    assert any(p["name"] == "_" for p in stops)


async def test_the_cache_buster_is_ignored_but_bounded(client):
    """``_`` is ignored, yet, like every parameter, at most 512 characters (as documented)."""
    response = await client.get("/v1/lines", params={"_": "9" * 513})
    assert response.status == 400
    assert await problem_parameters(response) == ["_"]
    empty = await client.get("/v1/lines", params={"_": ""})
    assert empty.status == 200


async def test_a_sync_accepts_the_cache_buster(client):
    """A sync (``sync=start``) takes the cache-busting ``_`` and ``lang`` beside it."""
    response = await client.get("/v1/events", params={"sync": "start", "_": "1", "lang": "en"})
    assert response.status == 200, await response.text()


async def test_board_explanation_has_a_code_and_a_message_in_each_language(client):
    """The ferry board on a date its feed does not cover: same code, message in fr and en."""
    messages = {}
    for lang in ("fr", "en"):
        response = await client.get("/v1/stops/stq:LEV/departures", params={"lang": lang})
        body = await response.json()
        explanation = body["data"]["explanation"]
        assert explanation["code"] == "outside_feed_validity"
        messages[lang] = explanation["message"]
        assert body["meta"]["language"] == lang
        assert "Accept-Language" in response.headers["Vary"]
        # Stop names and headsigns are the feed's: no blanket Content-Language.
        assert "Content-Language" not in response.headers
    assert messages == {
        "fr": EXPLANATIONS["outside_feed_validity"]["fr"],
        "en": EXPLANATIONS["outside_feed_validity"]["en"],
    }
    # The ETag differs with the message: a French copy is not "still valid" for English.
    french = await client.get("/v1/stops/stq:LEV/departures", params={"lang": "fr"})
    english = await client.get(
        "/v1/stops/stq:LEV/departures",
        headers={"Accept-Language": "en", "If-None-Match": french.headers["ETag"]},
    )
    assert english.status == 200


async def test_home_unavailable_has_a_code_and_a_message_in_each_language(client):
    """An empty part of /v1/home says why with a stable code, in the asked language."""
    fr = (await (await client.get(f"/v1/home?{SAN_FRANCISCO}&lang=fr")).json())["data"]
    en = (await (await client.get(f"/v1/home?{SAN_FRANCISCO}")).json())["data"]
    assert fr["parkings"]["unavailable"] == {
        "code": "no_source",
        "message": "Aucune source ne fournit ces données.",
    }
    # The demo's default language is fr: without lang or Accept-Language, French.
    assert en["parkings"]["unavailable"] == fr["parkings"]["unavailable"]
    en = (
        await (
            await client.get(f"/v1/home?{SAN_FRANCISCO}", headers={"Accept-Language": "en"})
        ).json()
    )["data"]
    assert en["parkings"]["unavailable"] == {
        "code": "no_source",
        "message": "No source provides this.",
    }


async def test_problems_have_a_code_and_say_the_language_of_their_detail(client):
    """A problem's title and detail follow the language, each detail under a stable code
    (a detail naming a parameter too: the parameter and the value as sent, the rest
    translated)."""
    fr = await (await client.get("/v1/nope", params={"lang": "fr"})).json(content_type=None)
    en = await (await client.get("/v1/nope", params={"lang": "en"})).json(content_type=None)
    assert (fr["code"], fr["title"], fr["detail"], fr["detail_language"]) == (
        "not_found",
        "Introuvable",
        "aucun point d'accès à /v1/nope",
        "fr",
    )
    assert (en["code"], en["title"], en["detail"], en["detail_language"]) == (
        "not_found",
        "Not found",
        "no endpoint at /v1/nope",
        "en",
    )
    wrong = await client.post("/v1/stops", headers={"Accept-Language": "fr-BE"})
    problem = await wrong.json(content_type=None)
    assert (problem["code"], problem["title"], problem["detail_language"]) == (
        "method_not_allowed",
        "Méthode non autorisée",
        "fr",
    )
    assert problem["detail"].startswith("POST n'est pas accepté ici")
    bad = await client.get("/v1/stops", params={"limit": "lots", "lang": "fr"})
    problem = await bad.json(content_type=None)
    assert (problem["code"], problem["title"], problem["detail_language"]) == (
        "invalid_parameter",
        "Paramètre invalide",
        "fr",
    )
    assert (problem["detail"], problem["detail_code"]) == (
        "lat: lat et lon sont requis",
        "lat_lon_required",
    )
    assert "Accept-Language" in bad.headers["Vary"]
    # lang itself wrong: the problem is in the language Accept-Language negotiates.
    bad_lang = await client.get(
        "/v1/stops", params={"lang": "xx"}, headers={"Accept-Language": "en"}
    )
    problem = await bad_lang.json(content_type=None)
    assert (problem["code"], problem["title"]) == ("invalid_parameter", "Invalid parameter")


def test_every_server_text_exists_in_french_and_english():
    """No message of the catalogue is missing a language (a code without its text)."""
    for catalogue in (
        EXPLANATIONS,
        UNAVAILABLE,
        HINTS,
        PROBLEM_TITLES,
        PROBLEM_DETAILS,
        WASTE_EXPLANATIONS,
    ):
        for code, texts in catalogue.items():
            assert set(texts) == set(MESSAGE_LANGUAGES), code
            assert all(text.strip() for text in texts.values()), code


async def test_a_french_only_event_asked_in_english_says_it_is_french(client):
    """The Paris agenda is French only: asked in English, its texts come in French, each
    says so, and no Content-Language claims English."""
    sync = await client.get(
        "/v1/events", params={"sync": "start", "lang": "en", "source": "paris-events"}
    )
    changed = (await sync.json())["data"]["changed"]
    paris = [e for e in changed if e["source"] == "paris-events"]
    assert paris
    assert all(e["text_languages"]["title"] == "fr" for e in paris)
    assert "Content-Language" not in sync.headers
    assert "Accept-Language" in sync.headers["Vary"]

    one = paris[0]["id"]
    english = await client.get(f"/v1/events/{one}", params={"lang": "en"})
    event = (await english.json())["data"]
    assert event["title"] == paris[0]["title"]
    assert event["text_languages"]["title"] == "fr"
    assert "Content-Language" not in english.headers
    french = await client.get(f"/v1/events/{one}", params={"lang": "fr"})
    assert french.headers["Content-Language"] == "fr"
    assert set((await french.json())["data"]["text_languages"].values()) == {"fr"}
