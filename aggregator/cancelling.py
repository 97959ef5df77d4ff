"""Ending background tasks for sure.

``task.cancel()`` asks once: the task ends only if the ``CancelledError`` reaches its top. On
Python 3.11 a library may swallow it — redis-py's pub/sub listener does now and then (a
cancellation landing in one of its read timeouts; redis/redis-py#2028 and #2551 describe the
race), and ``asyncio.wait_for`` does when what it waits for completes at that moment — and a
stop that then awaited the task waited for ever. That is how a ``serve --workers`` stop hung
in CI: the Redis store's listener, cancelled while reading, went on listening (reproduced in
121 of 300 closes of the store under pub/sub traffic). Cancelling again until the task has
ended costs nothing when the first request is heard.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aggregator.stop_report import where_task_waits

log = logging.getLogger(__name__)

#: How long a cancelled task has to end before it is asked again; doubled at each new request
#: up to the second figure (its cleanup on cancellation may be slow rather than lost).
RECANCEL_AFTER_S = 0.5
MAX_RECANCEL_AFTER_S = 4.0


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (None ones skipped) and return once every one has ended; a task that
    is asked again is named in the log with where it waits."""
    pending = {task for task in tasks if task is not None and not task.done()}
    wait = RECANCEL_AFTER_S
    for task in pending:
        task.cancel()
    while pending:
        _ended, pending = await asyncio.wait(pending, timeout=wait)
        # A first swallowed request is a known library race (info); a task still running
        # after a second one is worth an operator's eye (warning).
        level = logging.INFO if wait == RECANCEL_AFTER_S else logging.WARNING
        for task in pending:
            log.log(
                level,
                "task %s did not end %.1f s after it was cancelled; cancelling it again "
                "(it waits in %s)",
                task.get_name(),
                wait,
                where_task_waits(task),
            )
            task.cancel()
        wait = min(wait * 2, MAX_RECANCEL_AFTER_S)
    for task in tasks:
        # Retrieved, as gather(return_exceptions=True) did: asyncio would otherwise log each
        # failure as "exception was never retrieved" when the task is collected.
        if task is not None and not task.cancelled():
            task.exception()
