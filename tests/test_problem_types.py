"""Problems on the demo's real data: every ``detail`` under a stable code in French and
English, and every ``type`` a problem carries answered by the server itself (unknown routes
included)."""

import ast
import re
import string
from pathlib import Path
from urllib.parse import urljoin

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import runtime_from

from aggregator.api.app import ROUTER_KEY, create_app
from aggregator.api.messages import MESSAGE_LANGUAGES
from aggregator.api.problem_texts import REASONS, TYPE_DESCRIPTIONS
from aggregator.api.routing import canonical_path

FORMATTER = string.Formatter()
ROOT = Path(__file__).parents[1]
CONFIG_DIR = ROOT / "config"

#: Requests each answered by a problem, of as many kinds as a client can meet.
FAILING = [
    ("GET", "/nope"),
    ("GET", "/v1/nope/deeper"),
    ("GET", "/v1/stops?limit=lots"),
    ("GET", "/v1/stops?limt=5"),
    ("GET", "/v1/stops?lang=xx"),
    ("GET", "/v1/places?commune=00000"),
    ("GET", "/v1/places?commune=lille"),
    ("GET", "/v1/stops/caltrain:nowhere"),
    ("GET", "/v1/stops/nocolon"),
    ("GET", "/v1/lines/caltrain:nothing"),
    ("GET", "/v1/trips/caltrain:nothing"),
    ("GET", "/v1/events?from=2026-01-02&to=2026-01-01"),
    ("GET", "/v1/events?radius=100"),
    ("GET", "/v1/stream?stops=caltrain:nowhere&lines=caltrain:nothing"),
    ("GET", "/v1/stream"),
    ("GET", "/v1/departures?lat=37.7"),
    ("GET", "/v1/sources/nothing"),
    ("GET", "/v1/admin/sources/nothing"),
    ("GET", "/problems/no-such-type"),
    ("POST", "/v1/stops"),
    ("DELETE", "/v1/nope"),
    ("POST", "/v1/subscriptions"),  # notifications are not enabled in the demo
]


@pytest.fixture
async def client():
    runtime = runtime_from((CONFIG_DIR / "demo.yaml").read_text(), base_dir=CONFIG_DIR)
    for source_id in runtime.connectors:
        await runtime.poll_once(source_id)
    async with TestClient(TestServer(create_app(runtime, poll=False))) as test_client:
        yield test_client


async def problem(client, method: str, path: str, language: str) -> tuple[str, dict]:
    response = await client.request(method, path, headers={"Accept-Language": language})
    assert response.status >= 400, path
    assert response.headers["Content-Type"] == "application/problem+json", path
    return str(response.url), await response.json(content_type=None)


async def bogus_parameter_on_every_route(client) -> list[tuple[str, str]]:
    router = client.server.app[ROUTER_KEY]
    return [
        ("GET", re.sub(r"\{\w+\}", "demo:nothing", canonical_path(r.path)) + "?bogus=1")
        for r in router.routes()
        if r.method == "GET"
    ]


async def test_every_problem_type_resolves_on_the_server_itself(client):
    """Open each problem's ``type`` (resolved against the request's URL): this server answers
    200 with what the type means, in the asked language, for every kind of error."""
    asked = FAILING + await bogus_parameter_on_every_route(client)
    seen: dict[str, str] = {}
    for method, path in asked:
        url, body = await problem(client, method, path, "fr")
        seen[urljoin(url, body["type"])] = body["code"]
    assert set(seen.values()) >= {
        "invalid_parameter",
        "not_found",
        "method_not_allowed",
        "forbidden",
    }
    # The types of problems these requests cannot cause (a full server...) are served too.
    seen |= {str(client.make_url(f"/problems/{code}")): code for code in TYPE_DESCRIPTIONS}
    for url, code in seen.items():
        for language in ("fr", "en"):
            page = await client.session.get(url, headers={"Accept-Language": language})
            assert page.status == 200, url
            about = (await page.json())["data"]
            assert about["code"] == code and about["language"] == language
            assert about["description"] == TYPE_DESCRIPTIONS[code][language]


async def test_every_problem_detail_is_in_french_and_english_under_a_code(client):
    """Every detail, and every ``errors[]`` detail, has a stable code and is written in the
    asked language; the code is the same whatever the language."""
    asked = FAILING + await bogus_parameter_on_every_route(client)
    for method, path in asked:
        _, fr = await problem(client, method, path, "fr")
        _, en = await problem(client, method, path, "en")
        assert fr["detail_code"] is not None and fr["detail_code"] == en["detail_code"], path
        assert (fr["detail_language"], en["detail_language"]) == ("fr", "en"), path
        assert fr["detail"] != en["detail"], path
        for fr_error, en_error in zip(fr.get("errors", []), en.get("errors", []), strict=True):
            if isinstance(fr_error, dict):
                assert fr_error["code"] is not None and fr_error["code"] == en_error["code"]
                assert fr_error["detail"] != en_error["detail"], path


def test_every_raised_problem_names_a_catalogue_text():
    """Every problem raised in the code base names its detail by a code of the catalogue
    (not an English sentence), so none escapes translation. A helper that raises the code its
    caller names (``QueryParams.matching``) is checked at its callers."""
    raisers = {"BadParameter": 1, "NotFound": 0, "ApiError": 2}
    forwarders = {"matching": 2}  # method name: the position of the code its callers give
    offenders = []
    for source in [*ROOT.glob("aggregator/**/*.py"), *ROOT.glob("connectors/**/*.py")]:
        tree = ast.parse(source.read_text())
        forwarded = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef) and function.name in forwarders
            for node in ast.walk(function)
            if isinstance(node, ast.Name) and node.id == "reason"
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name):
                position = raisers.get(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                position = forwarders.get(node.func.attr)
            else:
                continue
            if position is None or len(node.args) <= position:
                continue  # the class itself, or a super().__init__ forwarding
            reason = node.args[position]
            if id(reason) in forwarded:
                continue
            if not (isinstance(reason, ast.Constant) and reason.value in REASONS):
                offenders.append(f"{source.relative_to(ROOT)}:{node.lineno}")
    assert not offenders


def test_every_problem_text_is_written_in_every_message_language():
    for catalogue in (REASONS, TYPE_DESCRIPTIONS):
        for code, texts in catalogue.items():
            assert set(texts) == set(MESSAGE_LANGUAGES), code
            fields = [
                {f for _, f, _, _ in string.Formatter().parse(t) if f} for t in texts.values()
            ]
            assert all(f == fields[0] for f in fields), code
