"""The ``beffroi`` command: serve, check a config, fetch one source once."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aggregator import __version__
from aggregator.config import BeffroiConfig, ConfigError, load_config
from aggregator.logs import configure_logging, remember_secrets
from aggregator.registry import RegistryError, config_models, discover_connector_types
from aggregator.runtime import Runtime

DEFAULT_CONFIG = Path("config/demo.yaml")
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beffroi",
        description="A city app's backend: polls transit, events and open-data feeds "
        "configured in YAML and serves them as one JSON API.",
    )
    parser.add_argument("--version", action="version", version=f"beffroi {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="text lines (default) or one JSON object per line, with `source`, `event` and "
        "`state` fields on a source's transitions",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="poll the sources and serve the API")
    serve.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG)
    serve.add_argument("--host", help="overrides server.host")
    serve.add_argument("--port", type=int, help="overrides server.port")
    serve.add_argument(
        "--role",
        choices=("all", "api", "poller"),
        default="all",
        help="all: poll and serve (default); api: serve only, following a shared store; "
        "poller: poll (and serve its own health endpoints)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serve with N API processes sharing the port (needs the redis store); "
        "with --role all, one more process polls",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)

    check = commands.add_parser("check", help="validate a config without serving")
    check.add_argument("-c", "--config", type=Path, required=True)
    check.add_argument("--fetch", action="store_true", help="also fetch each source once")

    fetch = commands.add_parser("fetch", help="fetch and parse one source once, then summarise")
    fetch.add_argument("-c", "--config", type=Path, required=True)
    fetch.add_argument("source_id")

    commands.add_parser(
        "vapid-keys",
        help="print a new VAPID key pair for Web Push (notifications.vapid_private_key)",
    )
    return parser


def _vapid_keys() -> int:
    """A new key pair: the private half for the config, the public half for the app."""
    from aggregator.notify.webpush import new_vapid_keys

    private, public = new_vapid_keys()
    print("# notifications.vapid_private_key (keep it secret; e.g. from an environment variable):")
    print(f"vapid_private_key: {private}")
    print("# applicationServerKey for PushManager.subscribe() in the app:")
    print(f"application_server_key: {public}")
    return 0


def _load(path: Path, *, require_sources: bool) -> tuple[BeffroiConfig, dict]:
    types = discover_connector_types()
    config = load_config(
        path, connector_types=config_models(types), require_sources=require_sources
    )
    return config, types


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    if args.command == "vapid-keys":
        return _vapid_keys()
    try:
        # `check` refuses a file with no source, as a reload does (see aggregator.reload).
        config, types = _load(args.config, require_sources=args.command == "check")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except RegistryError as exc:
        print(f"beffroi: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"beffroi: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    remember_secrets(config.secrets)
    if args.command == "serve":
        if args.workers > 1:
            from aggregator.workers import run_workers

            return run_workers(args, config)
        return _serve(config, types, args.host, args.port, args.role, args.reuse_port)
    if args.command == "check":
        return _check(config, types, fetch=args.fetch)
    return asyncio.run(_fetch_one(config, types, args.source_id))


def _serve(
    config: BeffroiConfig,
    types: dict,
    host: str | None,
    port: int | None,
    role: str = "all",
    reuse_port: bool = False,
) -> int:
    from aggregator.api.app import create_app  # the web stack is only needed to serve
    from aggregator.serving import serve

    try:
        runtime = Runtime(config, types, role=role)  # type: ignore[arg-type]
    except ValueError as exc:
        print(f"beffroi: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    app = create_app(runtime)
    host, port = host or config.server.host, port or config.server.port
    try:
        asyncio.run(
            serve(
                app,
                host=host,
                port=port,
                shutdown_timeout=config.server.shutdown_timeout,
                header_timeout=config.server.header_timeout,
                keepalive_timeout=config.server.keepalive_timeout,
                reuse_port=reuse_port,
                operator=(
                    (config.server.operator_host, config.server.operator_port)
                    if config.server.operator_port is not None
                    else None
                ),
            )
        )
    except OSError as exc:
        # A taken port or an address this host does not have: one line, not a traceback.
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        print(f"beffroi: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _check(config: BeffroiConfig, types: dict, *, fetch: bool) -> int:
    enabled = [c for c in config.connectors if c.enabled]
    print(f"{config.source_path}: valid, {len(enabled)} source(s) enabled")
    for source in config.connectors:
        state = "" if source.enabled else " (disabled)"
        print(f"  {source.id}: {source.type}, refresh {source.refresh.describe()}{state}")
    for source in enabled:
        if source.licence is None:
            # Every answer re-publishes its sources' data: say under which terms.
            print(
                f"  warning: {source.id} has no `licence` (an SPDX id such as etalab-2.0, or a "
                "URL): answers and the catalogue cannot say under which terms it is re-published"
            )
    if not fetch:
        return EXIT_OK
    return asyncio.run(_fetch_all(config, types, [c.id for c in enabled]))


async def _fetch_all(config: BeffroiConfig, types: dict, source_ids: list[str]) -> int:
    runtime = Runtime(config, types)
    failed = 0
    try:
        for source_id in source_ids:
            outcome = await runtime.poll_once(source_id)
            failed += outcome.outcome == "failed"
            _print_summary(runtime, source_id)
    finally:
        await runtime.stop()
    return EXIT_FAILED if failed else EXIT_OK


async def _fetch_one(config: BeffroiConfig, types: dict, source_id: str) -> int:
    runtime = Runtime(config, types)
    if source_id not in runtime.connectors:
        known = ", ".join(runtime.connectors) or "none"
        print(f"beffroi: no enabled source {source_id!r} (sources: {known})", file=sys.stderr)
        return EXIT_CONFIG
    try:
        outcome = await runtime.poll_once(source_id)
        _print_summary(runtime, source_id)
        snapshot = await runtime.store.load_snapshot(source_id)
        records = (
            runtime.connector_types[snapshot.source_type].records(snapshot) if snapshot else None
        )
        for record in (records or [])[:3]:
            print(f"    e.g. {record}")
    finally:
        await runtime.stop()
    return EXIT_FAILED if outcome.outcome == "failed" else EXIT_OK


def _print_summary(runtime: Runtime, source_id: str) -> None:
    status = runtime.statuses[source_id]
    duration = f"{status.last_duration_s:.2f}s" if status.last_duration_s is not None else "-"
    if status.consecutive_failures:
        print(f"  {source_id}: FAILED in {duration}: {status.last_error}")
        return
    print(f"  {source_id}: ok in {duration}, {status.record_count} records")
    if status.issue_count:
        # An issue is a row skipped or a value kept with a problem (hours served as text...)
        print(f"    {status.issue_count} issue(s) in the data, e.g.:")
        for issue in status.issue_samples:
            print(f"      - {issue}")
    for key, value in status.stats.items():
        print(f"    {key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
