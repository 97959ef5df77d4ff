"""Polling against a real local upstream: conditional GETs, failures, staleness, backoff."""

from datetime import UTC, datetime

from support import eventually, runtime_from
from upstream_server import Reply

from aggregator.status import SourceState

V1 = b'[{"code": "P1", "nom": "Gare"}, {"code": "P2", "nom": "Euralille"}]'
V2 = V1[:-1] + b', {"code": "P3", "nom": "Lille Europe"}]'


def source_yaml(url: str, refresh: str = "1h", retries: int = 0) -> str:
    return f"""
    connectors:
      - id: parkings
        type: json_records
        url: "{url}"
        refresh: {refresh}
        retries: {retries}
        timeout: 2s
        id_field: code
        fields:
          name: nom
    """


async def test_failed_polls_keep_the_last_good_data_then_recover(upstream):
    """Failures never replace good data: it is served flagged stale, and recovery is automatic."""
    upstream.route(
        "/p.json",
        [Reply(body=V1), Reply(status=500), Reply(status=500), Reply(status=500), Reply(body=V2)],
    )
    runtime = runtime_from(source_yaml(upstream.url("/p.json")))
    status = runtime.statuses["parkings"]
    try:
        assert (await runtime.poll_once("parkings")).outcome == "changed"
        assert runtime.live.snapshot("parkings").record_count == 2

        assert (await runtime.poll_once("parkings")).outcome == "failed"
        assert status.state(datetime.now(UTC)) is SourceState.DEGRADED
        assert "upstream answered 500" in status.last_error
        await runtime.poll_once("parkings")
        await runtime.poll_once("parkings")
        now = datetime.now(UTC)
        assert status.state(now) is SourceState.STALE
        assert runtime.freshness("parkings", now)["stale"] is True
        assert runtime.live.snapshot("parkings").version == 1  # still the good data
        assert runtime.live.snapshot("parkings").record_count == 2

        assert (await runtime.poll_once("parkings")).outcome == "changed"
        assert status.state(datetime.now(UTC)) is SourceState.OK
        assert runtime.live.snapshot("parkings").version == 2
        assert runtime.live.snapshot("parkings").record_count == 3
    finally:
        await runtime.stop()


async def test_a_feed_whose_rows_all_fail_the_mapping_fails_the_poll(upstream):
    """A publisher renaming the id column used to give "ok, 0 records": every answer built
    on the source went empty while its status said ok. Zero records out of N rows is a failed
    poll naming the reason; the last good records keep serving."""
    renamed = V2.replace(b'"code"', b'"identifiant"')
    upstream.route("/p.json", [Reply(body=V1), Reply(body=renamed)])
    runtime = runtime_from(source_yaml(upstream.url("/p.json")))
    status = runtime.statuses["parkings"]
    try:
        assert (await runtime.poll_once("parkings")).outcome == "changed"
        outcome = await runtime.poll_once("parkings")
        assert outcome.outcome == "failed"
        assert outcome.failure.code == "nothing_mapped"
        assert status.last_error.startswith(
            "none of the 3 rows could be mapped (check id_field and fields), "
            "e.g. record 1: id field 'code' is missing"
        )
        assert status.state(datetime.now(UTC)) is SourceState.DEGRADED
        assert runtime.live.snapshot("parkings").record_count == 2  # the good data stays
    finally:
        await runtime.stop()


async def test_not_modified_costs_no_parse(upstream):
    """A 304 keeps the snapshot (same version, same change time) and only refreshes the status."""
    upstream.route("/p.json", Reply(body=V1, headers={"ETag": '"v1"'}))
    runtime = runtime_from(source_yaml(upstream.url("/p.json")))
    status = runtime.statuses["parkings"]
    try:
        await runtime.poll_once("parkings")
        changed_at = status.last_change
        outcome = await runtime.poll_once("parkings")
        assert outcome.outcome == "unchanged"
        assert upstream.requests("/p.json")[1]["If-None-Match"] == '"v1"'
        assert status.last_change == changed_at
        assert status.last_success > changed_at
        assert runtime.live.snapshot("parkings").version == 1
    finally:
        await runtime.stop()


async def test_identical_body_without_validators_is_not_parsed_again(upstream):
    """An upstream without ETag or Last-Modified sending the same bytes keeps the version."""
    upstream.route("/p.json", Reply(body=V1))
    runtime = runtime_from(source_yaml(upstream.url("/p.json")))
    try:
        await runtime.poll_once("parkings")
        assert (await runtime.poll_once("parkings")).outcome == "unchanged"
        assert runtime.live.snapshot("parkings").version == 1
    finally:
        await runtime.stop()


async def test_unreadable_payload_fails_the_poll_and_keeps_the_data(upstream):
    """A 200 whose body cannot be parsed is a failure; the previous snapshot stays."""
    upstream.route("/p.json", [Reply(body=V1), Reply(body=b"<html>maintenance</html>")])
    runtime = runtime_from(source_yaml(upstream.url("/p.json")))
    status = runtime.statuses["parkings"]
    try:
        await runtime.poll_once("parkings")
        assert (await runtime.poll_once("parkings")).outcome == "failed"
        assert status.last_error.startswith("the feed could not be read: the body is not JSON")
        assert runtime.live.snapshot("parkings").record_count == 2
    finally:
        await runtime.stop()


async def test_secret_query_parameters_never_reach_the_status(upstream):
    """An API key in the source URL is redacted from the error that the status shows."""
    upstream.route("/p.json", Reply(status=503))
    runtime = runtime_from(source_yaml(upstream.url("/p.json?apikey=S3cr3tK3y")))
    try:
        await runtime.poll_once("parkings")
        error = runtime.statuses["parkings"].last_error
        assert "503" in error
        assert "S3cr3tK3y" not in error
        assert "S3cr3tK3y" not in str(runtime.statuses["parkings"].to_json(datetime.now(UTC)))
    finally:
        await runtime.stop()


async def test_scheduler_polls_backs_off_and_returns_to_cadence(upstream):
    """On its schedule a source loads, fails with growing delays, then recovers by itself."""
    upstream.route("/p.json", [Reply(body=V1), *[Reply(status=500)] * 3, Reply(body=V2)])
    runtime = runtime_from(source_yaml(upstream.url("/p.json"), refresh="100ms"))
    status = runtime.statuses["parkings"]
    await runtime.start()
    try:
        # Between polls (next_run is unknown while one runs).
        await eventually(lambda: status.consecutive_failures >= 2 and status.next_run is not None)
        # After n failures the next attempt waits 2^(n-1) intervals, ±10 %, counted from a
        # moment a little after last_attempt: the end of the poll's bookkeeping, which a
        # loaded machine can stretch (the slack stays under the next doubling).
        expected = 0.1 * 2 ** (status.consecutive_failures - 1)
        gap = (status.next_run - status.last_attempt).total_seconds()
        assert 0.85 * expected <= gap <= 1.15 * expected + 0.1
        await eventually(lambda: runtime.live.snapshot("parkings").version == 2)
        assert status.consecutive_failures == 0
        assert status.state(datetime.now(UTC)) is SourceState.OK
    finally:
        await runtime.stop()


async def test_retry_after_defers_the_next_scheduled_poll(upstream):
    """A 503 with Retry-After: 3600 pushes the next poll an hour away instead of hammering."""
    upstream.route("/p.json", Reply(status=503, headers={"Retry-After": "3600"}))
    runtime = runtime_from(source_yaml(upstream.url("/p.json"), refresh="1s"))
    status = runtime.statuses["parkings"]
    await runtime.start()
    try:
        await eventually(
            lambda: (
                status.consecutive_failures == 1
                and status.next_run is not None
                and status.next_run > status.last_attempt
            )
        )
        assert (status.next_run - status.last_attempt).total_seconds() >= 3590
        assert upstream.hits("/p.json") == 1
    finally:
        await runtime.stop()


async def test_logs_say_when_a_source_goes_down_and_recovers_not_every_poll(upstream, caplog):
    """Three failed polls log one warning (down) and one when stale; recovery logs once."""
    upstream.route(
        "/p.json", [Reply(body=V1), *[Reply(status=500)] * 4, Reply(body=V2), Reply(body=V2)]
    )
    runtime = runtime_from(source_yaml(upstream.url("/p.json")))
    caplog.set_level("INFO", logger="aggregator.poller")
    try:
        for _ in range(7):
            await runtime.poll_once("parkings")
    finally:
        await runtime.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "aggregator.poller"]
    assert messages[0] == "source parkings loaded: 2 records"
    assert messages[1].startswith("source parkings is failing: upstream answered 500")
    assert messages[1].endswith("(still serving the last good data)")
    assert messages[2].startswith("source parkings is stale after 3 failed polls")
    assert messages[3] == "source parkings recovered after 4 failed polls"
    assert len(messages) == 4
