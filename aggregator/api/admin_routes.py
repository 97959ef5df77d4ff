"""The admin API: force a poll, see a source's full error history, reload the configuration.

Every call needs ``Authorization: Bearer <server.admin_token>`` (compared in constant time).
With no token configured the admin API is disabled (403), so nobody can use it by accident.
A client failing too often is refused for a while (:mod:`aggregator.api.admin_throttle`).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from aiohttp import web

from aggregator.api import schemas
from aggregator.api.admin_throttle import ADMIN_FAILURES_KEY
from aggregator.api.problems import ApiError, NotFound
from aggregator.api.ratelimit import client_address
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.api.schemas import SOURCE_ID
from aggregator.config import ConfigError
from aggregator.runtime import Runtime, runtime_of


def require_admin(request: web.Request) -> Runtime:
    runtime = runtime_of(request)
    server = runtime.config.server
    token = server.admin_token
    if not token:
        raise ApiError(403, "Forbidden", "admin_disabled")
    failures = request.app[ADMIN_FAILURES_KEY]
    client = client_address(request, server.rate_limit)
    wait = failures.retry_after(client, server.admin_max_failures, server.admin_failure_window)
    if wait is not None:
        raise ApiError(
            429,
            "Too many failed authentications",
            "admin_throttled",
            fields={"wait": wait},
            kind="admin-throttled",
            headers={"Retry-After": str(wait)},
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _same_secret(given, token):
        failures.failed(client, server.admin_failure_window)
        raise ApiError(
            401,
            "Unauthorized",
            "admin_token_needed",
            headers={"WWW-Authenticate": 'Bearer realm="beffroi-admin"'},
        )
    return runtime


def _same_secret(given: str, expected: str) -> bool:
    """Compared in constant time, lengths included (both are hashed to 32 bytes first)."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def _source(runtime: Runtime, request: web.Request) -> str:
    source_id = request.match_info["source_id"]
    if source_id not in runtime.statuses:
        raise NotFound("no_source", source=repr(source_id))
    return source_id


async def source_detail(request: web.Request) -> ApiResult:
    runtime = require_admin(request)
    source_id = _source(runtime, request)
    status = runtime.statuses[source_id]
    data = runtime.source_json(status.source_id, datetime.now(UTC), detail=True)
    data["recent_errors"] = status.recent_errors
    snapshot = runtime.live.snapshot(source_id)
    data["issues"]["all_kept"] = list(snapshot.issues) if snapshot is not None else []
    return ApiResult(data, cacheable=False)


async def refresh_source(request: web.Request) -> ApiResult:
    runtime = require_admin(request)
    source_id = _source(runtime, request)
    if runtime.role == "api" or source_id not in runtime.runners:
        raise ApiError(409, "Conflict", "not_a_poller")
    poller = runtime.poller
    if poller is not None and runtime.store.shared and not await poller.holds(source_id):
        holder = runtime.statuses[source_id].polled_by
        raise ApiError(409, "Conflict", "polled_elsewhere", fields={"holder": holder})
    if poller is not None:
        outcome = await poller.refresh_now(source_id)  # and reschedule from its outcome
    else:
        outcome = await runtime.runners[source_id].run_once()
    return ApiResult(
        {
            "outcome": outcome.outcome,
            "error": outcome.error,
            "status": runtime.source_json(source_id, datetime.now(UTC), detail=True),
        },
        cacheable=False,
    )


async def reload_config(request: web.Request) -> ApiResult:
    runtime = require_admin(request)
    from aggregator.reload import reload_file

    path = runtime.config.source_path
    if path is None:
        raise ApiError(409, "Conflict", "no_config_file")
    try:
        report = await reload_file(runtime, path)
    except ConfigError as exc:
        raise ApiError(
            400,
            "Invalid configuration",
            "config_invalid",
            fields={"count": len(exc.issues), "path": path},
            kind="invalid-config",
            extra={"errors": [str(issue) for issue in exc.issues]},
        ) from None
    return ApiResult(report.to_json(), cacheable=False)


def register_admin_routes(router: ApiRouter) -> None:
    source_id = Param(
        "source_id", "A source id from the configuration.", SOURCE_ID, "path", required=True
    )
    declared = {"tags": ["admin"], "admin": True}
    router.get(
        "/v1/admin/sources/{source_id}",
        source_detail,
        summary="A source's full status with its recent errors (admin)",
        params=[source_id],
        errors=[400, 401, 403, 404, 429],
        response=router.add_schema("SourceDetail", schemas.SOURCE_DETAIL),
        **declared,
    )
    router.post(
        "/v1/admin/sources/{source_id}/refresh",
        refresh_source,
        summary="Poll a source now (admin)",
        params=[source_id],
        errors=[400, 401, 403, 404, 409, 429],
        response=router.add_schema("RefreshOutcome", schemas.REFRESH_OUTCOME),
        **declared,
    )
    router.post(
        "/v1/admin/reload",
        reload_config,
        summary="Read the configuration file again and apply it (admin)",
        errors=[400, 401, 403, 409, 429],
        response=router.add_schema("ReloadReport", schemas.RELOAD_REPORT),
        **declared,
    )
