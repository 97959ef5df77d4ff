"""``mapped_alerts``: a disruption document mapped into alerts on a GTFS timetable, served by
real upstreams (the document, Caltrain's real timetable, a GTFS-RT feed with an alert of its
own) and read back through /v1/alerts, line and stop details, departures and home."""

import textwrap
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from google.transit import gtfs_realtime_pb2 as pb
from support import config_from, runtime_from
from upstream_server import Reply

from aggregator.api.app import create_app
from aggregator.config import ConfigError

DEMO = Path(__file__).parents[1] / "config" / "demo-data"
FIXTURES = Path(__file__).parent / "fixtures" / "alerts"
DOCUMENT = FIXTURES / "ilevia-perturbations-caltrain.geojson"
CLOCK = "2023-11-07T17:06:00-08:00"  # the instant of the Caltrain captures
CAPTURE = 1699405534


def gtfs_rt_alert() -> bytes:
    """A GTFS-RT feed with one alert on L3 (the real Caltrain alerts capture holds none)."""
    feed = pb.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = CAPTURE
    alert = feed.entity.add(id="works-l3").alert
    alert.informed_entity.add(route_id="L3")
    alert.header_text.translation.add(text="Travaux sur la ligne L3", language="fr")
    return feed.SerializeToString()


# The Ilévia mapping of config/lille.yaml, pointed at the test upstream and the Caltrain feed.
ALERTS_SOURCE = """
  - id: perturbations
    type: mapped_alerts
    feed: caltrain
    url: {url}
    retries: 0
    records_path: features
    id_field: properties.identifiant_message
    language: fr
    fields:
      header: properties.message
      severity: properties.type_perturbation
      effect: properties.type_perturbation
      end: properties.heure_fin_prevue
      lines: properties.cible
    values:
      severity: {{Perturbation: warning, Information: info}}
      effect: {{Perturbation: unknown_effect, Information: other_effect}}
    lines:
      match: short_name
      pattern: "^ILEVIA:LineRef::(?P<ref>[^:]+):LOC$"
"""


def config(upstream, alerts_source: str = ALERTS_SOURCE, realtime: bool = True) -> str:
    rt = f"""
  - id: caltrain-rt
    type: gtfs_rt
    feed: caltrain
    retries: 0
    urls: [{upstream.url("/alerts.pb")}]
"""
    return f"""
defaults:
  languages: [fr, en]
clock:
  fixed: {CLOCK}
connectors:
  - id: caltrain
    type: gtfs
    url: {upstream.url("/caltrain.zip")}
    retries: 0
{rt if realtime else ""}{alerts_source.format(url=upstream.url("/perturbations"))}
"""


def serve(upstream, document: bytes) -> None:
    upstream.route("/caltrain.zip", Reply.file(DEMO / "caltrain-2023-11.gtfs.zip"))
    upstream.route("/alerts.pb", Reply(body=gtfs_rt_alert()))
    upstream.route("/perturbations", Reply(body=document, content_type="application/geo+json"))


async def started(yaml: str, sources: tuple[str, ...] = ("caltrain-rt", "perturbations")):
    runtime = runtime_from(yaml)
    await runtime.poll_once("caltrain")
    for source in sources:
        await runtime.poll_once(source)
    return runtime


async def get_json(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def test_disruptions_reach_alerts_lines_stops_departures_and_home(upstream):
    serve(upstream, DOCUMENT.read_bytes())
    runtime = await started(config(upstream))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await get_json(client, "/v1/alerts")
        mine = {a["id"]: a for a in body["data"] if ":perturbations:" in a["id"]}
        # M-9004 ended at noon; M-9006 has no text: neither is shown.
        assert sorted(mine) == [
            "caltrain:perturbations:M-9001",
            "caltrain:perturbations:M-9002",
            "caltrain:perturbations:M-9003",
            "caltrain:perturbations:M-9005",
        ]
        # The GTFS-RT feed's own alert is still there, beside the mapped ones.
        assert "caltrain:works-l3" in [a["id"] for a in body["data"]]
        assert {"caltrain-rt", "perturbations"} <= set(body["meta"]["sources"])

        l1 = mine["caltrain:perturbations:M-9001"]
        assert l1["header"].startswith("Ligne L1 : trafic perturbé")
        assert l1["severity"] == "warning" and l1["effect"] == "unknown_effect"
        assert [line["id"] for line in l1["lines"]] == ["caltrain:L1"]
        # A date without offset is in the timetable's zone (America/Los_Angeles).
        assert l1["active_periods"] == [{"start": None, "end": "2023-11-07T23:30:00-08:00"}]
        info = mine["caltrain:perturbations:M-9002"]
        assert info["severity"] == "info" and info["active_periods"] == []
        assert [line["id"] for line in info["lines"]] == ["caltrain:B7"]
        # ME1 is no Caltrain line: the alert is listed, on no line.
        assert mine["caltrain:perturbations:M-9003"]["lines"] == []
        # An unreadable end ("demain matin") leaves the period open, and is reported.
        assert mine["caltrain:perturbations:M-9005"]["active_periods"] == []

        on_l1 = await get_json(client, "/v1/alerts?line=caltrain:L1")
        assert "caltrain:perturbations:M-9001" in [a["id"] for a in on_l1["data"]]
        line = await get_json(client, "/v1/lines/caltrain:L1")
        assert "caltrain:perturbations:M-9001" in line["data"]["alert_ids"]
        board = await get_json(client, "/v1/stops/caltrain:san_francisco/departures?limit=20")
        l1_departures = [d for d in board["data"]["departures"] if d["line"]["id"] == "caltrain:L1"]
        assert l1_departures
        assert all("caltrain:perturbations:M-9001" in d["alert_ids"] for d in l1_departures)
        assert "perturbations" in board["meta"]["sources"]
        home = await get_json(client, "/v1/home?lat=37.77639&lon=-122.394992")
        assert "caltrain:perturbations:M-9001" in [a["id"] for a in home["data"]["alerts"]["items"]]

        status = runtime.statuses["perturbations"]
        issues = " | ".join(status.issue_samples)
        assert "1 line reference(s) match no line of 'caltrain'" in issues
        assert "'ILEVIA:LineRef::ME1:LOC'" in issues
        assert "'perturbations:M-9005': field 'end': 'demain matin' is not a date" in issues
        assert "'perturbations:M-9006': no header nor description text, alert skipped" in issues
        assert status.stats["unresolved_lines"] == 1


async def test_alerts_without_any_gtfs_rt_feed(upstream):
    """A network with disruptions but no GTFS-RT still gets its alerts on lines and boards."""
    serve(upstream, DOCUMENT.read_bytes())
    runtime = await started(config(upstream, realtime=False), ("perturbations",))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await get_json(client, "/v1/alerts?line=caltrain:B7&lang=en")
        assert [a["id"] for a in body["data"]] == ["caltrain:perturbations:M-9002"]
        line = await get_json(client, "/v1/lines/caltrain:B7")
        assert line["data"]["alert_ids"] == ["caltrain:perturbations:M-9002"]
        # Boards carry the alerts, but do not claim realtime times they do not have.
        board = await get_json(client, "/v1/stops/caltrain:san_francisco/departures?limit=20")
        assert board["meta"]["realtime"]["caltrain"]["available"] is False
        assert all(d["realtime"] is False for d in board["data"]["departures"])
        l1 = [d for d in board["data"]["departures"] if d["line"]["id"] == "caltrain:L1"]
        assert l1 and all("caltrain:perturbations:M-9001" in d["alert_ids"] for d in l1)


CSV_SOURCE = """
  - id: perturbations
    type: mapped_alerts
    feed: caltrain
    url: {url}
    retries: 0
    format: csv
    id_field: id
    fields:
      header: {{translations: {{fr: titre, en: title}}}}
      description: details
      cause: cause
      start: debut
      stops: arrets
    values:
      cause: {{travaux: construction}}
    stops:
      match: name
      separator: "|"
"""


async def test_csv_document_with_stops_by_name_and_translations(upstream):
    document = (
        "id;titre;title;details;cause;debut;arrets\n"
        "7;Quai fermé;Platform closed;Accès par la rue;travaux;2023-11-07T06:00:00-08:00;"
        "LAWRENCE|Gare inconnue\n"
        "8;Ascenseur;Lift;;grève;;SAN FRANCISCO caltrain station\n"
    ).encode()
    serve(upstream, document)
    runtime = await started(config(upstream, CSV_SOURCE, realtime=False), ("perturbations",))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        english = await get_json(client, "/v1/alerts?lang=en")
        alerts = {a["id"]: a for a in english["data"]}
        closed = alerts["caltrain:perturbations:7"]
        assert closed["header"] == "Platform closed"
        assert closed["description"] == "Accès par la rue"
        assert closed["cause"] == "construction"
        assert closed["active_periods"][0]["start"] == "2023-11-07T06:00:00-08:00"
        assert [s["id"] for s in closed["stops"]] == ["caltrain:lawrence"]
        # A stop name shared by a station and its platforms names them all.
        lift = alerts["caltrain:perturbations:8"]
        assert {s["id"] for s in lift["stops"]} >= {"caltrain:70011", "caltrain:70012"}
        assert lift["cause"] is None  # "grève" is in no value map: left empty, reported
        stop = await get_json(client, "/v1/stops/caltrain:lawrence")
        assert stop["data"]["alert_ids"] == ["caltrain:perturbations:7"]
    issues = " | ".join(runtime.statuses["perturbations"].issue_samples)
    assert "1 stop reference(s) match no stop of 'caltrain' by name" in issues
    assert "'Gare inconnue'" in issues
    assert (
        "1 cause value(s) are not in values.cause nor GTFS-RT cause names (e.g. 'grève')" in issues
    )


async def test_a_broken_document_fails_the_poll_and_keeps_the_last_alerts(upstream):
    serve(upstream, DOCUMENT.read_bytes())
    runtime = await started(config(upstream, realtime=False), ("perturbations",))
    upstream.route("/perturbations", Reply(body=b"<html>maintenance</html>"))
    await runtime.poll_once("perturbations")
    status = runtime.statuses["perturbations"]
    assert status.consecutive_failures == 1
    assert "not JSON" in (status.last_error or "")
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await get_json(client, "/v1/alerts")
        assert len(body["data"]) == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("      titre: properties.message\n", "unknown alert field(s) 'titre'"),
        ("      severity: {Perturbation: grave}\n", "'grave' is not a GTFS-RT severity"),
        ('      pattern: "(unclosed"\n', "is not a regular expression"),
        ("      match: route_color\n", "must be one of: short_name, id, long_name"),
    ],
)
def test_bad_mappings_are_config_errors_naming_the_problem(change, message):
    lines = ALERTS_SOURCE.format(url="https://example.org/p.json").splitlines(keepends=True)
    key = change.strip().split(":")[0]
    if key == "titre":
        at = next(i for i, line in enumerate(lines) if line.strip() == "fields:")
        lines.insert(at + 1, change)
    elif key == "severity":
        at = next(i for i, line in enumerate(lines) if line.strip().startswith("severity: {"))
        lines[at] = change
    else:
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(key + ":"))
        lines[at] = change
    text = f"""
connectors:
  - id: caltrain
    type: gtfs
    url: https://example.org/gtfs.zip
{"".join(lines)}"""
    with pytest.raises(ConfigError) as info:
        config_from(text)
    assert message in str(info.value)


def test_the_feed_must_name_a_gtfs_source():
    text = """
connectors:
""" + ALERTS_SOURCE.format(url="https://example.org/p.json")
    with pytest.raises(ConfigError) as info:
        config_from(text)
    assert "caltrain" in str(info.value)


LILLE = Path(__file__).parents[1] / "config" / "lille.yaml"


def lille_entry(source_id: str) -> dict:
    entries = yaml.safe_load(LILLE.read_text(encoding="utf-8"))["connectors"]
    return next(entry for entry in entries if entry["id"] == source_id)


async def test_the_lille_config_maps_ilevia_disruptions_into_alerts(upstream):
    """config/lille.yaml's own mapping, read against the Ilévia-shaped document."""
    entry = {**lille_entry("ilevia-perturbations"), "id": "perturbations", "feed": "caltrain"}
    entry.update(url="{url}", retries=0)
    source = textwrap.indent(yaml.safe_dump([entry], allow_unicode=True), "  ")
    serve(upstream, DOCUMENT.read_bytes())
    # safe_dump writes block style: the only braces left are the {url} placeholder's.
    runtime = await started(config(upstream, source, realtime=False), ("perturbations",))
    async with TestClient(TestServer(create_app(runtime, poll=False))) as client:
        body = await get_json(client, "/v1/alerts?line=caltrain:L1")
        [alert] = body["data"]
        assert alert["id"] == "caltrain:perturbations:M-9001"
        assert alert["severity"] == "warning"
    # Ilévia's metro line "ME1" is looked up as "M1", which Caltrain has not: reported.
    issues = " | ".join(runtime.statuses["perturbations"].issue_samples)
    assert "'ILEVIA:LineRef::ME1:LOC'" in issues


def test_the_lille_agenda_channel_reads_the_council_sessions():
    entries = yaml.safe_load(LILLE.read_text(encoding="utf-8"))["connectors"]
    agenda = [entry for entry in entries if entry.get("channel") == "agenda"]
    assert [entry["id"] for entry in agenda] == ["mel-conseil"]
    assert "conseil" in agenda[0]["where"]
    # Loads with the installed connector types, offline.
    config_from(LILLE.read_text(encoding="utf-8"), environ={"BEFFROI_CURSOR_SECRET": "s"})
