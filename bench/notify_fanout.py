"""One alert fanned out to N Web Push subscriptions against a local push service.

Measures what the notifier does (queue N messages in one transaction, encrypt each per
RFC 8291, sign VAPID, POST, record the outcome) from the moment the change is recorded until
every message is acknowledged, and the process's peak RSS, for two audiences, so that memory
can be seen to follow the concurrency, not the audience. The peer, in the same run, is
pywebpush's blocking ``webpush()`` (requests) on a thread pool of the same width.

The push service runs in its own process (so its work is not counted) on 127.0.0.1: it
accepts every message and decrypts one in 100 with the fake browser's key (http-ece), which
must give back the payload.

    .venv/bin/python bench/notify_fanout.py --subscriptions 20000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = 100  # distinct fake browsers; subscription i uses key i % KEYS


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browsers() -> list[tuple[bytes, str, bytes]]:
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


def push_service(port_out: multiprocessing.Queue, keys: list[tuple[bytes, str, bytes]]) -> None:
    import http_ece
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import ec

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


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(database: Path, n: int, port: int, keys: list[tuple[bytes, str, bytes]]) -> None:
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM subscriptions")
        rows = [
            (
                f"s{i}",
                b"x",
                "webpush",
                f"http://127.0.0.1:{port}/push/{i}",
                keys[i % KEYS][1],
                b64(keys[i % KEYS][2]),
                "fr",
                "{}",
                0.0,
                time.time(),
            )
            for i in range(n)
        ]
        db.executemany("INSERT INTO subscriptions VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany(
            "INSERT INTO subscription_topics VALUES (?, ?)",
            [("line:demo:L1", f"s{i}") for i in range(n)],
        )


async def beffroi_run(config_text: str, n: int, port: int, keys: list, run: int) -> float:
    from aggregator.config import parse_config
    from aggregator.notify.service import Notifier
    from aggregator.notify.storage import Change
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    types = discover_connector_types()
    config = parse_config(config_text, filename="bench.yaml", connector_types=config_models(types))
    runtime = Runtime(config, types)
    notifier = Notifier(runtime)
    await notifier.store.open()
    fill(Path(notifier.store.path), n, port, keys)
    payload = {"v": 1, "kind": "alert", "title": "L1 : Trafic interrompu", "body": "x" * 200}
    change = Change(
        f"alert:demo:{run}", ("line:demo:L1",), "alert:demo", "high", {"fr": payload, "en": payload}
    )
    started = time.perf_counter()
    await notifier.store.record_changes([change], time.time())
    await notifier.step()
    elapsed = time.perf_counter() - started
    states = await notifier.store.states()
    assert states == {"sent": n}, states
    await notifier.stop()
    return elapsed


def peer_run(private_key: str, n: int, port: int, keys: list, concurrency: int) -> float:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=2_000, help="the smaller audience")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer", type=int, default=2_000, help="messages sent by the peer")
    args = parser.parse_args()

    from aggregator.notify.webpush import new_vapid_keys

    keys = browsers()
    ports: multiprocessing.Queue = multiprocessing.Queue()
    service = multiprocessing.Process(target=push_service, args=(ports, keys), daemon=True)
    service.start()
    port = ports.get(timeout=30)
    private, _public = new_vapid_keys()
    results: dict[str, list[float]] = {}
    peak: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for n in (args.small, args.subscriptions):
            config = f"""
notifications:
  enabled: true
  database: {scratch}/bench-{n}.sqlite3
  vapid_private_key: {private}
  allow_private_push_endpoints: true
  concurrency: {args.concurrency}
"""
            for run in range(args.runs):
                elapsed = asyncio.run(beffroi_run(config, n, port, keys, run))
                results.setdefault(f"beffroi-{n}", []).append(elapsed)
                print(
                    f"beffroi {n:>6} messages run {run + 1}: {elapsed:6.2f} s "
                    f"({n / elapsed:,.0f}/s), peak RSS so far {rss_mb():.0f} MB",
                    flush=True,
                )
            peak[n] = rss_mb()
        for run in range(args.runs):
            elapsed = peer_run(private, args.peer, port, keys, args.concurrency)
            results.setdefault(f"peer-{args.peer}", []).append(elapsed)
            print(
                f"peer    {args.peer:>6} messages run {run + 1}: {elapsed:6.2f} s "
                f"({args.peer / elapsed:,.0f}/s)",
                flush=True,
            )
    service.kill()
    print("\n| sender | messages | median s | messages/s | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, times in results.items():
        who, n = label.rsplit("-", 1)
        median = statistics.median(times)
        memory = f"{peak[int(n)]:.0f}" if who == "beffroi" else "—"
        name = (
            "Beffroi notifier (webpush_async, one session)"
            if who == "beffroi"
            else "peer: pywebpush webpush() on a thread pool"
        )
        print(f"| {name} | {int(n):,} | {median:.2f} | {int(n) / median:,.0f} | {memory} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
