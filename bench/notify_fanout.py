"""One alert fanned out to N Web Push subscriptions against a local push service, with the
subscriptions in SQLite and in PostgreSQL.

Measures what the notifier does (queue N messages in one transaction, encrypt each per
RFC 8291, sign VAPID, POST, record the outcome) from the moment the change is recorded until
every message is acknowledged: wall time, the sender's CPU time (which the machine's load
does not inflate) and its peak RSS, for two audiences, so that memory can be seen to follow
the concurrency, not the audience. Every run is a fresh process pinned to one core, so that
its peak RSS is its own; the subscriptions are written before it starts (by this process),
so the peak is the sending's. Runs of both storages and both audiences are interleaved, so
that a change in the machine's load falls on all alike. The peer, in the same run, is
pywebpush's blocking ``webpush()`` (requests) on a thread pool of the same width.

The push service runs in its own process (so its work is not counted) on 127.0.0.1: it
accepts every message and decrypts one in 100 with the fake browser's key (http-ece), which
must give back the payload. PostgreSQL is a real server (``--postgres``): the run works in a
schema of its own, dropped at the end.

    .venv/bin/python bench/notify_fanout.py --subscriptions 20000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import header, memory_kb, table  # noqa: E402

KEYS = 100  # distinct fake browsers; subscription i uses key i % KEYS
TOPIC = "line:demo:L1"
STORAGE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
Keys = list[tuple[bytes, str, bytes]]


class Sample(NamedTuple):
    """One run: wall and CPU seconds of the sender, its RSS when ready to send (imports done,
    store open) and its peak."""

    seconds: float
    cpu: float
    baseline_mb: float
    peak_mb: float


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browsers() -> Keys:
    """(private scalar, p256dh, auth) of each fake browser, deterministic for the run."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = []
    for i in range(KEYS):
        key = ec.derive_private_key(1000 + i, ec.SECP256R1())
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        out.append(((1000 + i).to_bytes(32, "big"), b64(public), os.urandom(16)))
    return out


def push_service(port_out: multiprocessing.Queue, keys: Keys) -> None:
    import http_ece
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import ec

    with contextlib.suppress(OSError, ValueError):  # the sender has core 0 to itself
        os.sched_setaffinity(0, {1})
    private = [ec.derive_private_key(int.from_bytes(k, "big"), ec.SECP256R1()) for k, _, _ in keys]
    state = {"received": 0, "decrypted": 0}

    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        index = int(request.match_info["index"])
        state["received"] += 1
        if index % 100 == 0:
            plain = http_ece.decrypt(
                body,
                private_key=private[index % KEYS],
                auth_secret=keys[index % KEYS][2],
                version="aes128gcm",
            )
            assert plain.startswith(b"{"), plain[:20]
            state["decrypted"] += 1
        return web.Response(status=201)

    async def count(_request: web.Request) -> web.Response:
        return web.json_response(state)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/push/{index}", accept)
        app.router.add_get("/count", count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def subscriptions(n: int, port: int, keys: Keys) -> Iterator[tuple]:
    """The rows of ``n`` subscriptions to ``TOPIC``, in the stores' column order."""
    from aggregator.notify.storage import Subscription

    now = time.time()
    for i in range(n):
        yield Subscription(
            id=f"s{i}",
            secret_hash=b"x",
            kind="webpush",
            endpoint=f"http://127.0.0.1:{port}/push/{i}",
            p256dh=keys[i % KEYS][1],
            auth=b64(keys[i % KEYS][2]),
            lang="fr",
            topics={"lines": ["demo:L1"]},
            created_at=now,
            used_at=now,
        ).row()


async def fill(location: str, n: int, port: int, keys: Keys) -> None:
    """A fresh store (migrated by the store itself) holding ``n`` subscribers of ``TOPIC``,
    written in bulk: ``store.add`` is a transaction per subscription."""
    from aggregator.notify.storage import SUBSCRIPTION_COLUMNS, open_store

    store = open_store(location)
    await store.open()
    await store.close()
    columns = [c.strip() for c in SUBSCRIPTION_COLUMNS.split(",")]
    if location.startswith("postgresql://"):
        import asyncpg

        db = await asyncpg.connect(location)
        try:
            await db.execute("TRUNCATE notify_subscriptions, notify_changes CASCADE")
            await db.copy_records_to_table(
                "notify_subscriptions", records=subscriptions(n, port, keys), columns=columns
            )
            await db.copy_records_to_table(
                "notify_subscription_topics",
                records=((TOPIC, f"s{i}") for i in range(n)),
                columns=["topic", "subscription_id"],
            )
        finally:
            await db.close()
        return
    with contextlib.closing(sqlite3.connect(location)) as db, db:
        for emptied in ("outbox", "subscription_topics", "changes", "subscriptions"):
            db.execute(f"DELETE FROM {emptied}")
        marks = ",".join("?" * len(columns))
        db.executemany(
            f"INSERT INTO subscriptions ({', '.join(columns)}) VALUES ({marks})",
            subscriptions(n, port, keys),
        )
        db.executemany(
            "INSERT INTO subscription_topics VALUES (?, ?)", ((TOPIC, f"s{i}") for i in range(n))
        )


async def beffroi_run(location: str, n: int, private: str, concurrency: int) -> Sample:
    """One fan-out: wall and CPU seconds from recording the change until every message is
    acknowledged and its outcome recorded; the RSS once the notifier is ready, and the peak."""
    from aggregator.config import parse_config
    from aggregator.notify.service import Notifier
    from aggregator.notify.storage import Change
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    config_text = f"""
notifications:
  enabled: true
  database: "{location}"
  vapid_private_key: {private}
  allow_private_push_endpoints: true
  concurrency: {concurrency}
"""
    types = discover_connector_types()
    config = parse_config(config_text, filename="bench.yaml", connector_types=config_models(types))
    notifier = Notifier(Runtime(config, types))
    await notifier.store.open()
    payload = {"v": 1, "kind": "alert", "title": "L1 : Trafic interrompu", "body": "x" * 200}
    change = Change("alert:demo:1", (TOPIC,), "alert:demo", "high", {"fr": payload, "en": payload})
    try:
        baseline = memory_kb("VmRSS") / 1024
        started, cpu = time.perf_counter(), time.process_time()
        await notifier.store.record_changes([change], time.time())
        await notifier.step()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        states = await notifier.store.states()
        assert states == {"sent": n}, states
    finally:
        await notifier.stop()
    return Sample(elapsed, cpu, baseline, memory_kb("VmHWM") / 1024)


def measure(location: str, n: int, private: str, concurrency: int) -> Sample:
    """One run in a fresh process on core 0, so that its peak RSS is its own."""
    with contextlib.suppress(OSError, ValueError):
        os.sched_setaffinity(0, {0})
    return asyncio.run(beffroi_run(location, n, private, concurrency))


@contextlib.asynccontextmanager
async def postgres_schema(server: str) -> AsyncIterator[str]:
    """A schema of its own on ``server``, dropped on the way out; yields the store's URL."""
    import asyncpg

    schema = f"bench_fanout_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server, timeout=10)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        # asyncpg passes unknown URL parameters on as server settings.
        yield f"{server}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def peer_run(private_key: str, n: int, port: int, keys: Keys, concurrency: int) -> float:
    """pywebpush's blocking webpush() on a thread pool of the same width."""
    import orjson
    from pywebpush import webpush

    payload = orjson.dumps({"v": 1, "kind": "alert", "title": "L1", "body": "x" * 200})

    def one(i: int) -> int:
        info = {
            "endpoint": f"http://127.0.0.1:{port}/push/{i}",
            "keys": {"p256dh": keys[i % KEYS][1], "auth": b64(keys[i % KEYS][2])},
        }
        response = webpush(
            info,
            data=payload,
            vapid_private_key=private_key,
            vapid_claims={"sub": "mailto:bench@example.invalid"},
            ttl=3600,
            headers={"Urgency": "high"},
        )
        return response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(one, range(n)))
    assert all(s == 201 for s in statuses)
    return time.perf_counter() - started


async def run_all(
    args: argparse.Namespace, storages: list[str], port: int, keys: Keys, private: str
) -> dict[tuple[str, int], list[Sample]]:
    """Every run of every (storage, audience), interleaved run by run so that a change in the
    machine's load falls on all of them alike. The store is filled afresh before each run."""
    results: dict[tuple[str, int], list[Sample]] = {}
    spawn = multiprocessing.get_context("spawn")
    async with contextlib.AsyncExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        locations = {"sqlite": f"{scratch}/bench.sqlite3"}
        if "postgresql" in storages:
            locations["postgresql"] = await stack.enter_async_context(
                postgres_schema(args.postgres)
            )
        for run in range(1, args.runs + 1):
            for n in (args.small, args.subscriptions):
                for storage in storages:
                    await fill(locations[storage], n, port, keys)
                    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                        future = pool.submit(
                            measure, locations[storage], n, private, args.concurrency
                        )
                        sample = await asyncio.wrap_future(future)
                    results.setdefault((storage, n), []).append(sample)
                    print(
                        f"{storage:<10} {n:>6} messages run {run}: {sample.seconds:6.2f} s "
                        f"({n / sample.seconds:,.0f}/s), CPU {sample.cpu:.2f} s, "
                        f"peak RSS {sample.peak_mb:.0f} MB",
                        flush=True,
                    )
    return results


def report(
    results: dict[tuple[str, int], list[Sample]], peer: list[float], args: argparse.Namespace
) -> str:
    def med(samples: list[Sample], field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples)

    peer_rate = args.peer / statistics.median(peer)
    rows = []
    for (storage, n), samples in results.items():
        seconds = med(samples, "seconds")
        rows.append(
            [
                f"Beffroi notifier, {STORAGE_NAMES[storage]}",
                f"{n:,}",
                f"{seconds:.2f}",
                f"{n / seconds:,.0f}",
                f"{n / seconds / peer_rate:.2f}",
                f"{med(samples, 'cpu'):.2f}",
                f"{med(samples, 'baseline_mb'):.0f}",
                f"{max(s.peak_mb for s in samples):.0f}",
            ]
        )
    rows.append(
        [
            "peer: pywebpush `webpush()` on a thread pool",
            f"{args.peer:,}",
            f"{statistics.median(peer):.2f}",
            f"{peer_rate:,.0f}",
            "1.00",
            "—",
            "—",
            "—",
        ]
    )
    headers = ["sender", "messages", "median s", "messages/s", "× peer rate", "CPU s"]
    lines = [
        table(
            [*headers, "RSS before MB", "peak RSS MB"],
            rows,
            [False, True, True, True, True, True, True, True],
        )
    ]
    for n in (args.small, args.subscriptions):
        if ("sqlite", n) in results and ("postgresql", n) in results:
            sqlite, postgres = results["sqlite", n], results["postgresql", n]
            wall = med(postgres, "seconds") / med(sqlite, "seconds")
            cpu = med(postgres, "cpu") / med(sqlite, "cpu")
            lines.append(
                f"\n{n:,} messages, PostgreSQL / SQLite: {wall:.2f}× the time, "
                f"{cpu:.2f}× the sender's CPU."
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=2_000, help="the smaller audience")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer", type=int, default=2_000, help="messages sent by the peer")
    parser.add_argument(
        "--storage",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (both by default)",
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL server the run may create (and drop) a schema in",
    )
    args = parser.parse_args()
    storages = [s.strip() for s in args.storage.split(",") if s.strip()]
    if unknown := set(storages) - set(STORAGE_NAMES):
        parser.error(f"unknown storage {', '.join(sorted(unknown))}")

    from aggregator.notify.webpush import new_vapid_keys

    keys = browsers()
    ports: multiprocessing.Queue = multiprocessing.Queue()
    service = multiprocessing.Process(target=push_service, args=(ports, keys), daemon=True)
    service.start()
    port = ports.get(timeout=30)
    private, _public = new_vapid_keys()
    peer: list[float] = []
    try:
        results = asyncio.run(run_all(args, storages, port, keys, private))
        for run in range(args.runs):
            elapsed = peer_run(private, args.peer, port, keys, args.concurrency)
            peer.append(elapsed)
            print(
                f"peer       {args.peer:>6} messages run {run + 1}: {elapsed:6.2f} s "
                f"({args.peer / elapsed:,.0f}/s)",
                flush=True,
            )
    finally:
        service.kill()
    print(f"\n{header()}\nconcurrency: {args.concurrency}, {args.runs} run(s) each\n")
    print(report(results, peer, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
