"""Applying a new configuration to a running process (SIGHUP, or the admin API).

Sources are compared by id: added ones start polling, removed ones stop and their data goes,
changed ones are polled again at once with their new settings (their current data keeps
serving until then), unchanged ones keep everything. Settings outside ``connectors`` shape the
process itself (its port, store, clock...): a change there is reported as needing a restart.

The file is read and validated in a worker thread, so the event loop keeps answering however
long that takes, and a file with no enabled source is refused like an invalid one: applying it
would take every running source offline. Reloads run one at a time, in the order asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aggregator.config import BeffroiConfig, load_config
from aggregator.connector import ConnectorContext
from aggregator.logs import remember_secrets
from aggregator.redact import Redactor
from aggregator.registry import config_models
from aggregator.runtime import Runtime, new_status
from aggregator.status import update_status

log = logging.getLogger(__name__)

#: Sections applied only at start.
RESTART_SECTIONS = ("server", "store", "defaults", "clock")


@dataclass
class ReloadReport:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "restart_needed": self.restart_needed,
        }


#: One lock per running process: two SIGHUPs in a row must not apply two files at once.
_RELOAD_LOCKS: weakref.WeakKeyDictionary[Runtime, asyncio.Lock] = weakref.WeakKeyDictionary()


def read_config(runtime: Runtime, path: Path) -> BeffroiConfig:
    """The new configuration, validated like at start (ConfigError lists every problem).

    Blocking: call it from a worker thread (:func:`reload_file` does).
    """
    return load_config(
        path, connector_types=config_models(runtime.connector_types), require_sources=True
    )


async def reload_file(runtime: Runtime, path: Path) -> ReloadReport:
    """Read ``path`` off the event loop and apply it; on ConfigError nothing changes."""
    lock = _RELOAD_LOCKS.setdefault(runtime, asyncio.Lock())
    async with lock:
        try:
            new = await asyncio.to_thread(read_config, runtime, path)
        except Exception:
            runtime.reload_ok = False  # /metrics: beffroi_config_last_reload_successful 0
            raise
        report = await apply_config(runtime, new)
        runtime.reload_ok, runtime.reload_at = True, time.time()
        return report


async def apply_config(runtime: Runtime, new: BeffroiConfig) -> ReloadReport:
    """Make ``runtime`` run ``new``'s sources; see the module docstring."""
    report = ReloadReport()
    old = runtime.config
    for section in RESTART_SECTIONS:
        if getattr(old, section).model_dump() != getattr(new, section).model_dump():
            report.restart_needed.append(section)
    before = {c.id: c for c in old.connectors if c.enabled}
    after = {c.id: c for c in new.connectors if c.enabled}
    # New sources get a context with the new secrets, so their errors are redacted too.
    runtime.redactor = Redactor(old.secrets | new.secrets)
    remember_secrets(new.secrets)  # and so are log lines about them
    context = ConnectorContext(
        timezone=runtime.context.timezone,
        languages=runtime.context.languages,
        base_dir=runtime.context.base_dir,
        allow_file_urls=runtime.context.allow_file_urls,
        redactor=runtime.redactor,
        clock=runtime.clock,
        snapshot_of=runtime.live.snapshot,
    )
    runtime.context = context

    for source_id in before.keys() - after.keys():
        await _stop_polling(runtime, source_id)
        runtime.connectors.pop(source_id, None)
        runtime.statuses.pop(source_id, None)
        runtime.live.drop(source_id)
        report.removed.append(source_id)

    for source_id, source in after.items():
        previous = before.get(source_id)
        if previous is not None and previous.model_dump() == source.model_dump():
            report.unchanged.append(source_id)
            continue
        if previous is not None and previous.type != source.type:
            # A different type is a different source that happens to keep the id.
            await _stop_polling(runtime, source_id)
            runtime.live.drop(source_id)
            previous = None
        await _stop_polling(runtime, source_id)
        runtime.connectors[source_id] = runtime.connector_types[source.type](source, context)
        fresh = new_status(source)
        if previous is not None and source_id in runtime.statuses:
            # Keep the history (last success, counters); take the new settings.
            status = runtime.statuses[source_id]
            update_status(
                status,
                {
                    "title": fresh.title,
                    "refresh": fresh.refresh,
                    "interval_s": fresh.interval_s,
                    "stale_after_s": fresh.stale_after_s,
                    "required": fresh.required,
                    "licence": fresh.licence,
                    "attribution": fresh.attribution,
                },
            )
            report.changed.append(source_id)
        else:
            runtime.statuses[source_id] = fresh
            report.added.append(source_id)
        await _start_polling(runtime, source_id)

    runtime.config = new.model_copy(
        update={
            section: getattr(old, section)
            for section in RESTART_SECTIONS
            if section in report.restart_needed
        }
    )
    # Titles, intervals, default languages...: answers cached before the reload are void.
    runtime.live.touch()
    log.info(
        "configuration reloaded: added %s, removed %s, changed %s%s",
        report.added or "none",
        report.removed or "none",
        report.changed or "none",
        f"; restart to apply: {', '.join(report.restart_needed)}" if report.restart_needed else "",
    )
    return report


async def _stop_polling(runtime: Runtime, source_id: str) -> None:
    if runtime.poller is not None:
        await runtime.poller.remove(source_id)
    runtime.runners.pop(source_id, None)


async def _start_polling(runtime: Runtime, source_id: str) -> None:
    if runtime.fetcher is None:
        return  # not started: runners are made at start
    runner = runtime.new_runner(source_id)
    await runner.resume()
    runner.forget_content()  # new settings: fetch and parse in full
    runtime.runners[source_id] = runner
    if runtime.poller is not None:
        runtime.poller.add(runner)
