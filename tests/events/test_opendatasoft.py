"""The opendatasoft connector against a local portal replaying real OpenAgenda-mirror rows."""

from __future__ import annotations

import orjson
import pytest
from upstream_server import Reply

from aggregator.fetch import Fetcher
from connectors.events.opendatasoft import (
    OpendatasoftConfig,
    OpendatasoftConnector,
    OpendatasoftError,
)
from events.helpers import EVENTS, context, shared_file

PATH = "/api/explore/v2.1/catalog/datasets/evenements-publics-openagenda/records"


def real_rows() -> list[dict]:
    """The 100 real records (Explore v1 answer, userANNA123/rag-openagenda), as v2.1 rows."""
    path = shared_file(
        "opendatasoft-evenements-publics-openagenda/events_q-paris_22935bd.json", EVENTS
    )
    return [r["fields"] for r in orjson.loads(path.read_bytes())["records"]]


def connector(upstream, **extra) -> OpendatasoftConnector:
    config = {
        "id": "ods",
        "type": "opendatasoft",
        "base_url": upstream.url(""),
        "dataset": "evenements-publics-openagenda",
        "where": 'location_city = "Paris"',
        "page_size": 60,
    } | extra
    return OpendatasoftConnector(OpendatasoftConfig.model_validate(config), context())


def results(rows: list[dict], total: int) -> Reply:
    return Reply(body=orjson.dumps({"total_count": total, "results": rows}))


async def test_pages_with_offset_and_maps_json_string_timings(upstream):
    """100 real rows come in pages of 60 + 40; JSON-string timings become occurrences."""
    rows = real_rows()
    upstream.route(PATH, [results(rows[:60], 100), results(rows[60:], 100)])
    ods = connector(upstream)
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        fetched = await ods.fetch(fetcher, None)
    queries = [r.query for r in upstream.requests(PATH)]
    assert [q["offset"] for q in queries] == ["0", "60"]
    assert queries[0]["where"] == 'location_city = "Paris"'
    result = ods.parse(fetched.body)
    assert result.stats["rows"] == 100
    budget = [r for r in result.data if r["uid"] == "74620224"]
    assert len(budget) == 17  # the 17 timings of the JSON-encoded string
    first = budget[0]
    assert first["start"] == "2019-09-06T06:00:00+02:00"
    assert first["title"]["fr"].startswith("Budget participatif")
    assert first["location"]["lat"] == 48.835598 and first["location"]["lon"] == 2.325843
    assert "<strong>" in first["description_html"]["fr"]
    assert "<" not in first["description"]["fr"]
    assert first["status"] == "scheduled"


def test_v1_shaped_document_parses_directly():
    """The real v1 answer itself (records[].fields) is read by parse too."""
    path = shared_file(
        "opendatasoft-evenements-publics-openagenda/events_q-paris_22935bd.json", EVENTS
    )
    ods = OpendatasoftConnector(
        OpendatasoftConfig.model_validate(
            {"id": "ods", "type": "opendatasoft", "base_url": "https://x.org", "dataset": "d"}
        ),
        context(),
    )
    result = ods.parse(path.read_bytes())
    assert result.record_count > 100
    assert len({r["id"] for r in result.data}) == result.record_count


async def test_max_records_caps_the_paging(upstream):
    """max_records stops the paging even when the portal has more."""
    rows = real_rows()
    upstream.route(PATH, [results(rows[:60], 5000), results(rows[60:], 5000)])
    ods = connector(upstream, max_records=70)
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        fetched = await ods.fetch(fetcher, None)
    assert ods.parse(fetched.body).stats["rows"] == 70


async def test_yaml_mapping_overrides_the_default(upstream):
    """A source's ``fields`` replace default mapping entries (here: the title)."""
    upstream.route(PATH, results(real_rows()[:1], 1))
    ods = connector(upstream, fields={"title": {"translations": {"fr": "location_name"}}})
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        fetched = await ods.fetch(fetcher, None)
    record = ods.parse(fetched.body).data[0]
    assert record["title"] == {"fr": "Maison de la vie associative et citoyenne du 14e"}


async def test_error_document_is_a_clear_failure(upstream):
    """An ODS error document (bad ODSQL in ``where``) raises with the portal's message."""
    error = {"error_code": "ODSQLError", "message": "Unknown field: location_cty"}
    upstream.route(PATH, Reply(body=orjson.dumps(error)))
    async with Fetcher(user_agent="beffroi-tests") as fetcher:
        with pytest.raises(OpendatasoftError, match="Unknown field"):
            await connector(upstream).fetch(fetcher, None)
