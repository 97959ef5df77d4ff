"""Subscriptions and what was sent to them, in SQLite: one embedded file that survives restarts.

Every statement runs on one worker thread (:mod:`sqlite3` blocks; the event loop must not), so
the connection is never shared between threads. The schema is versioned: ``schema_migrations``
records each applied step, and :data:`MIGRATIONS` only ever grows.

Dedup is durable: a change (an alert's content, an agenda item's content) is recorded once in
``changes`` and fanned out to the ``outbox`` in the same transaction, one row per (change,
subscription) under a primary key, so a restart or a second process can never send it twice.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aggregator.notify.pg_storage import PgSubscriptionStore

T = TypeVar("T")

#: Each step of the schema, applied in order once; never edit a released step, add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        kind TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        p256dh TEXT NOT NULL,
        auth TEXT NOT NULL,
        lang TEXT NOT NULL,
        topics TEXT NOT NULL,
        created_at REAL NOT NULL,
        used_at REAL NOT NULL
    );
    CREATE TABLE subscription_topics (
        topic TEXT NOT NULL,
        subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        PRIMARY KEY (topic, subscription_id)
    ) WITHOUT ROWID;
    CREATE INDEX subscription_topics_by_subscription ON subscription_topics(subscription_id);
    CREATE TABLE changes (
        key TEXT PRIMARY KEY,
        seen_at REAL NOT NULL,
        collapse TEXT NOT NULL,
        urgency TEXT NOT NULL,
        payloads TEXT NOT NULL
    );
    CREATE TABLE outbox (
        change_key TEXT NOT NULL REFERENCES changes(key) ON DELETE CASCADE,
        subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at REAL NOT NULL,
        PRIMARY KEY (change_key, subscription_id)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_due ON outbox(state, due_at);
    """,
)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    secret_hash: bytes
    kind: str
    endpoint: str
    p256dh: str
    auth: str
    lang: str
    #: ``{"lines": [...], "stops": [...], "agenda": bool, "categories": [...]}``.
    topics: dict[str, Any]
    created_at: float
    used_at: float

    def row(self) -> tuple[Any, ...]:
        """The values of :data:`SUBSCRIPTION_COLUMNS`, in order (both storage backends)."""
        return (
            self.id,
            self.secret_hash,
            self.kind,
            self.endpoint,
            self.p256dh,
            self.auth,
            self.lang,
            json.dumps(self.topics),
            self.created_at,
            self.used_at,
        )


@dataclass(frozen=True, slots=True)
class Change:
    """Something subscribers of ``topics`` are told once: ``payloads`` by language."""

    key: str
    topics: tuple[str, ...]
    #: What the push service collapses on (RFC 8030 Topic): a newer change replaces it.
    collapse: str
    urgency: str
    payloads: dict[str, dict[str, Any]]
    #: Also queue it for subscribers who arrived after it was first recorded (each still gets
    #: it once, by the outbox's key): a reminder is worth sending to whoever follows its
    #: topic while it holds; an alert in force before someone subscribed is not news to them.
    late_subscribers: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pending notification: a change for one subscription."""

    change_key: str
    subscription: Subscription
    attempts: int
    collapse: str
    urgency: str
    payloads: dict[str, dict[str, Any]]


def topic_keys(topics: dict[str, Any]) -> list[str]:
    """The index keys a subscription is found under: ``line:<id>``, ``stop:<id>``, ``agenda``
    (every agenda item) or ``agenda:<category>`` (only those), and the news and waste keys
    of :func:`aggregator.notify.topics.extra_topic_keys`."""
    from aggregator.notify.topics import extra_topic_keys

    keys = [f"line:{i}" for i in topics.get("lines", ())]
    keys += [f"stop:{i}" for i in topics.get("stops", ())]
    if topics.get("agenda"):
        categories = topics.get("categories") or []
        keys += [f"agenda:{c}" for c in categories] if categories else ["agenda"]
    keys += extra_topic_keys(topics)
    return sorted(set(keys))


SUBSCRIPTION_COLUMNS = (
    "id, secret_hash, kind, endpoint, p256dh, auth, lang, topics, created_at, used_at"
)


def _subscription(row: Sequence[Any]) -> Subscription:
    return Subscription(*row[:7], json.loads(row[7]), row[8], row[9])  # type: ignore[call-arg]


def open_store(database: str) -> SubscriptionStore | PgSubscriptionStore:
    """The store a ``notifications.database`` names: a ``postgresql://`` URL, else a file."""
    if database.startswith(("postgresql://", "postgres://")):
        from aggregator.notify.pg_storage import PgSubscriptionStore

        return PgSubscriptionStore(database)
    return SubscriptionStore(database)


class SubscriptionStore:
    """The SQLite file at ``path``; call :meth:`open` first and :meth:`close` last."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beffroi-sqlite")
        self._db: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "the subscription store is not open"
            with self._db:  # one transaction: committed, or rolled back on error
                return work(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL stays consistent; a power cut (not a crash) may lose the last
            # commits, which at worst sends a notification again.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            db.isolation_level = "DEFERRED"
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        await self._run(_migrate)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def schema_version(self) -> int:
        return await self._run(_version)

    # -- subscriptions ----------------------------------------------------------------

    async def add(self, sub: Subscription) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                sub.row(),
            )
            _index_topics(db, sub.id, sub.topics)

        await self._run(work)

    async def get(self, sub_id: str) -> Subscription | None:
        def work(db: sqlite3.Connection) -> Subscription | None:
            row = db.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ?", (sub_id,)
            ).fetchone()
            return _subscription(row) if row else None

        return await self._run(work)

    async def update(
        self, sub_id: str, *, lang: str, topics: dict[str, Any], used_at: float
    ) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE subscriptions SET lang = ?, topics = ?, used_at = ? WHERE id = ?",
                (lang, json.dumps(topics), used_at, sub_id),
            )
            db.execute("DELETE FROM subscription_topics WHERE subscription_id = ?", (sub_id,))
            _index_topics(db, sub_id, topics)

        await self._run(work)

    async def touch(self, sub_id: str, used_at: float) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE subscriptions SET used_at = ? WHERE id = ?", (used_at, sub_id)
            )
        )

    async def delete(self, sub_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,)).rowcount > 0

        return await self._run(work)

    async def expire(self, idle_before: float, done_before: float | None = None) -> int:
        """Delete subscriptions not used since ``idle_before`` (how many went), and the records
        of messages sent or given up before ``done_before`` (the dedup is the ``changes`` row,
        which stays)."""

        def work(db: sqlite3.Connection) -> int:
            if done_before is not None:
                db.execute(
                    "DELETE FROM outbox WHERE state <> 'pending' AND due_at < ?", (done_before,)
                )
            cursor = db.execute("DELETE FROM subscriptions WHERE used_at < ?", (idle_before,))
            return cursor.rowcount

        return await self._run(work)

    async def followed_topics(self, prefix: str) -> list[str]:
        """The topic keys starting with ``prefix`` (ASCII) that some subscription follows."""
        # A range on the primary key (binary collation): the index, not a scan.
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)

        def work(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT DISTINCT topic FROM subscription_topics "
                "WHERE topic >= ? AND topic < ? ORDER BY topic",
                (prefix, end),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(work)

    async def follows_signature(self, prefix: str) -> tuple[int, float]:
        """How many follows of topic keys starting with ``prefix`` (ASCII) there are, and the
        sum of their subscriptions' last use: changes when a subscription starts following
        one, or is changed (an update also sets its last use). Cheap to compare."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)

        def work(db: sqlite3.Connection) -> tuple[int, float]:
            row = db.execute(
                "SELECT count(*), coalesce(sum(s.used_at), 0) FROM subscription_topics t "
                "JOIN subscriptions s ON s.id = t.subscription_id "
                "WHERE t.topic >= ? AND t.topic < ?",
                (prefix, end),
            ).fetchone()
            return int(row[0]), float(row[1])

        return await self._run(work)

    async def count(self) -> int:
        return await self._run(
            lambda db: db.execute("SELECT count(*) FROM subscriptions").fetchone()[0]
        )

    # -- changes and deliveries -------------------------------------------------------

    async def record_changes(self, changes: Iterable[Change], now: float) -> int:
        """Record the changes not seen before and queue them for every subscriber of their
        topics at that moment; how many notifications were queued. A change already recorded
        (this process before a restart, or another one) queues nothing, unless it takes
        ``late_subscribers`` (then only those it was never queued for)."""
        batch = list(changes)

        def work(db: sqlite3.Connection) -> int:
            queued = 0
            for change in batch:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO changes (key, seen_at, collapse, urgency, payloads) "
                    "VALUES (?,?,?,?,?)",
                    (change.key, now, change.collapse, change.urgency, json.dumps(change.payloads)),
                ).rowcount
                if not inserted and not change.late_subscribers:
                    continue
                marks = ",".join("?" * len(change.topics))
                queued += db.execute(
                    "INSERT OR IGNORE INTO outbox (change_key, subscription_id, due_at) "
                    f"SELECT DISTINCT ?, subscription_id, ? FROM subscription_topics "
                    f"WHERE topic IN ({marks})",
                    (change.key, now, *change.topics),
                ).rowcount
            return queued

        return await self._run(work)

    async def due(self, now: float, limit: int) -> list[Delivery]:
        """Pending notifications whose time has come, oldest first."""

        def work(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute(
                "SELECT o.change_key, o.attempts, c.collapse, c.urgency, c.payloads, "
                + ", ".join(f"s.{c.strip()}" for c in SUBSCRIPTION_COLUMNS.split(","))
                + " FROM outbox o JOIN changes c ON c.key = o.change_key "
                "JOIN subscriptions s ON s.id = o.subscription_id "
                "WHERE o.state = 'pending' AND o.due_at <= ? ORDER BY o.due_at LIMIT ?",
                (now, limit),
            ).fetchall()
            return [
                Delivery(r[0], _subscription(r[5:]), r[1], r[2], r[3], json.loads(r[4]))
                for r in rows
            ]

        return await self._run(work)

    async def settle(
        self,
        *,
        sent: Sequence[tuple[str, str]] = (),
        failed: Sequence[tuple[str, str]] = (),
        retries: Sequence[tuple[str, str, float]] = (),
        gone: Sequence[str] = (),
    ) -> None:
        """Record a batch of outcomes in one transaction: (change, subscription) pairs sent or
        given up, retries with their due time, and subscriptions their push service calls gone."""

        def work(db: sqlite3.Connection) -> None:
            for state, pairs in (("sent", sent), ("failed", failed)):
                db.executemany(
                    "UPDATE outbox SET state = ? WHERE change_key = ? AND subscription_id = ?",
                    [(state, key, sub) for key, sub in pairs],
                )
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, due_at = ? "
                "WHERE change_key = ? AND subscription_id = ?",
                [(due, key, sub) for key, sub, due in retries],
            )
            db.executemany("DELETE FROM subscriptions WHERE id = ?", [(sub,) for sub in gone])

        await self._run(work)

    async def states(self) -> dict[str, int]:
        """How many notifications are in each state (for tests and diagnostics)."""

        def work(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
            return {state: n for state, n in rows}

        return await self._run(work)


def _index_topics(db: sqlite3.Connection, sub_id: str, topics: dict[str, Any]) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO subscription_topics (topic, subscription_id) VALUES (?, ?)",
        [(key, sub_id) for key in topic_keys(topics)],
    )


def _version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _migrate(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    current = _version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the notifications database is at schema {current}, newer than this "
            f"Beffroi knows ({len(MIGRATIONS)}); upgrade Beffroi"
        )
    for version, script in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        for statement in script.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, time.time()),
        )
