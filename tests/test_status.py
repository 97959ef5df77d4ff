"""Source states and the retry policy after failed polls."""

from datetime import UTC, datetime, timedelta

from aggregator.poller import retry_delay
from aggregator.status import STALE_AFTER_FAILURES, SourceState, SourceStatus

T0 = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)


def new_status() -> SourceStatus:
    return SourceStatus(
        source_id="s",
        source_type="json_records",
        title=None,
        refresh="every 1m",
        interval_s=60,
        stale_after_s=180,
        required=False,
    )


def succeed(status: SourceStatus, at: datetime, issues: tuple[str, ...] = ()) -> None:
    status.record_success(
        at=at,
        duration_s=0.1,
        changed=True,
        version=(status.version or 0) + 1,
        record_count=3,
        issues=issues,
        issue_count=len(issues),
        stats={},
    )


def test_states_follow_polls():
    """never_loaded → failing → ok → degraded → stale → ok, as polls fail and succeed."""
    status = new_status()
    assert status.state(T0) is SourceState.NEVER_LOADED
    status.record_failure(at=T0, duration_s=0.1, error="connection refused")
    assert status.state(T0) is SourceState.FAILING
    succeed(status, T0)
    assert status.state(T0) is SourceState.OK
    status.record_failure(at=T0, duration_s=0.1, error="upstream answered 500")
    assert status.state(T0) is SourceState.DEGRADED
    assert not status.is_stale(T0)
    for _ in range(STALE_AFTER_FAILURES - 1):
        status.record_failure(at=T0, duration_s=0.1, error="upstream answered 500")
    assert status.state(T0) is SourceState.STALE
    assert status.version == 1 and status.record_count == 3  # the good data is still there
    succeed(status, T0)
    assert status.state(T0) is SourceState.OK


def test_data_goes_stale_with_age_alone():
    """Data older than stale_after is stale even if no poll failed."""
    status = new_status()
    succeed(status, T0)
    assert status.state(T0 + timedelta(seconds=179)) is SourceState.OK
    assert status.state(T0 + timedelta(seconds=181)) is SourceState.STALE


def test_skipped_rows_make_a_source_degraded():
    """A successful poll that skipped broken rows is degraded, with examples kept (shown in
    the detailed form only)."""
    status = new_status()
    succeed(status, T0, issues=("record 2: id field 'id' is missing",))
    assert status.state(T0) is SourceState.DEGRADED
    assert status.to_json(T0, detail=True)["issues"] == {
        "count": 1,
        "examples": ["record 2: id field 'id' is missing"],
    }
    # The public form counts them; what the rows said is for the operator (admin API).
    assert status.to_json(T0)["issues"] == {"count": 1, "examples": []}


def test_retry_delay_backs_off_and_caps():
    """Fast sources back off exponentially to 30 min; slow ones retry within a minute first."""
    middle = lambda: 0.5  # noqa: E731 - the jitter's midpoint makes the figures exact
    assert [retry_delay(30, n, rand=middle) for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay(30, 20, rand=middle) == 1800
    assert retry_delay(86400, 1, rand=middle) == 60
    assert retry_delay(86400, 30, rand=middle) == 86400


def test_retry_delay_honours_retry_after_and_jitter_bounds():
    """Retry-After is a floor; jitter stays within ±10 %."""
    assert retry_delay(30, 1, retry_after=600, rand=lambda: 0.5) == 600
    assert retry_delay(30, 1, rand=lambda: 0.0) == 27
    assert retry_delay(30, 1, rand=lambda: 1.0) == 33
