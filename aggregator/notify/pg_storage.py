"""The subscription store in PostgreSQL, through asyncpg: for deployments whose processes do
not share a disk. The same tables, dedup and migrations as :mod:`aggregator.notify.storage`
(SQLite), in PostgreSQL's dialect; migrations take an advisory lock so that processes starting
together apply each step once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from aggregator.notify.storage import (
    SUBSCRIPTION_COLUMNS,
    Change,
    Delivery,
    Subscription,
    topic_keys,
)

#: Each step of the schema, applied in order once; never edit a released step, add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE notify_subscriptions (
        id TEXT PRIMARY KEY,
        secret_hash BYTEA NOT NULL,
        kind TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        p256dh TEXT NOT NULL,
        auth TEXT NOT NULL,
        lang TEXT NOT NULL,
        topics TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        used_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE notify_subscription_topics (
        topic TEXT NOT NULL,
        subscription_id TEXT NOT NULL REFERENCES notify_subscriptions(id) ON DELETE CASCADE,
        PRIMARY KEY (topic, subscription_id)
    );
    CREATE INDEX notify_topics_by_subscription ON notify_subscription_topics(subscription_id);
    CREATE TABLE notify_changes (
        key TEXT PRIMARY KEY,
        seen_at DOUBLE PRECISION NOT NULL,
        collapse TEXT NOT NULL,
        urgency TEXT NOT NULL,
        payloads TEXT NOT NULL
    );
    CREATE TABLE notify_outbox (
        change_key TEXT NOT NULL REFERENCES notify_changes(key) ON DELETE CASCADE,
        subscription_id TEXT NOT NULL REFERENCES notify_subscriptions(id) ON DELETE CASCADE,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (change_key, subscription_id)
    );
    CREATE INDEX notify_outbox_due ON notify_outbox(state, due_at);
    """,
)
#: Any fixed number: the advisory lock migrations hold (one per database).
_MIGRATION_LOCK = 0x6265_6666_726F_6931 & 0x7FFF_FFFF_FFFF_FFFF
_COLUMNS = SUBSCRIPTION_COLUMNS


def _subscription(row: Any, offset: int = 0) -> Subscription:
    values = list(row.values())[offset : offset + 10]
    values[1] = bytes(values[1])
    values[7] = json.loads(values[7])
    return Subscription(*values)


def _count(status: str) -> int:
    """Rows touched, from a command status such as ``INSERT 0 12`` or ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PgSubscriptionStore:
    """Subscriptions in the PostgreSQL database at ``dsn`` (``postgresql://...``)."""

    def __init__(self, dsn: str) -> None:
        self.path = dsn
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the subscription store is not open"
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.path, min_size=1, max_size=4)
        async with self.pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await db.execute(
                "CREATE TABLE IF NOT EXISTS notify_schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            current = await db.fetchval("SELECT max(version) FROM notify_schema_migrations") or 0
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"the notifications database is at schema {current}, newer than this "
                    f"Beffroi knows ({len(MIGRATIONS)}); upgrade Beffroi"
                )
            for version, script in enumerate(MIGRATIONS, start=1):
                if version > current:
                    await db.execute(script)
                    await db.execute(
                        "INSERT INTO notify_schema_migrations VALUES ($1, $2)", version, time.time()
                    )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def schema_version(self) -> int:
        return int(await self.pool.fetchval("SELECT max(version) FROM notify_schema_migrations"))

    async def add(self, sub: Subscription) -> None:
        async with self.pool.acquire() as db, db.transaction():
            await db.execute(
                f"INSERT INTO notify_subscriptions ({_COLUMNS}) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                *sub.row(),
            )
            await _index_topics(db, sub.id, sub.topics)

    async def get(self, sub_id: str) -> Subscription | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM notify_subscriptions WHERE id = $1", sub_id
        )
        return _subscription(row) if row else None

    async def update(
        self, sub_id: str, *, lang: str, topics: dict[str, Any], used_at: float
    ) -> None:
        async with self.pool.acquire() as db, db.transaction():
            await db.execute(
                "UPDATE notify_subscriptions SET lang = $1, topics = $2, used_at = $3 "
                "WHERE id = $4",
                lang,
                json.dumps(topics),
                used_at,
                sub_id,
            )
            await db.execute(
                "DELETE FROM notify_subscription_topics WHERE subscription_id = $1", sub_id
            )
            await _index_topics(db, sub_id, topics)

    async def touch(self, sub_id: str, used_at: float) -> None:
        await self.pool.execute(
            "UPDATE notify_subscriptions SET used_at = $1 WHERE id = $2", used_at, sub_id
        )

    async def delete(self, sub_id: str) -> bool:
        status = await self.pool.execute("DELETE FROM notify_subscriptions WHERE id = $1", sub_id)
        return _count(status) > 0

    async def expire(self, idle_before: float, done_before: float | None = None) -> int:
        if done_before is not None:
            await self.pool.execute(
                "DELETE FROM notify_outbox WHERE state <> 'pending' AND due_at < $1", done_before
            )
        status = await self.pool.execute(
            "DELETE FROM notify_subscriptions WHERE used_at < $1", idle_before
        )
        return _count(status)

    async def followed_topics(self, prefix: str) -> list[str]:
        """The topic keys starting with ``prefix`` that some subscription follows."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT topic FROM notify_subscription_topics "
            "WHERE starts_with(topic, $1) ORDER BY topic",
            prefix,
        )
        return [row[0] for row in rows]

    async def follows_signature(self, prefix: str) -> tuple[int, float]:
        """See :meth:`aggregator.notify.storage.SubscriptionStore.follows_signature`."""
        row = await self.pool.fetchrow(
            "SELECT count(*), coalesce(sum(s.used_at), 0) FROM notify_subscription_topics t "
            "JOIN notify_subscriptions s ON s.id = t.subscription_id "
            "WHERE starts_with(t.topic, $1)",
            prefix,
        )
        assert row is not None
        return int(row[0]), float(row[1])

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM notify_subscriptions"))

    async def record_changes(self, changes: Iterable[Change], now: float) -> int:
        queued = 0
        async with self.pool.acquire() as db, db.transaction():
            for change in changes:
                inserted = await db.fetchval(
                    "INSERT INTO notify_changes (key, seen_at, collapse, urgency, payloads) "
                    "VALUES ($1,$2,$3,$4,$5) ON CONFLICT (key) DO NOTHING RETURNING key",
                    change.key,
                    now,
                    change.collapse,
                    change.urgency,
                    json.dumps(change.payloads),
                )
                if inserted is None and not change.late_subscribers:
                    continue
                status = await db.execute(
                    "INSERT INTO notify_outbox (change_key, subscription_id, due_at) "
                    "SELECT DISTINCT $1::text, subscription_id, $2::double precision "
                    "FROM notify_subscription_topics WHERE topic = ANY($3::text[]) "
                    "ON CONFLICT DO NOTHING",
                    change.key,
                    now,
                    list(change.topics),
                )
                queued += _count(status)
        return queued

    async def due(self, now: float, limit: int) -> list[Delivery]:
        columns = ", ".join(f"s.{c.strip()}" for c in _COLUMNS.split(","))
        rows = await self.pool.fetch(
            "SELECT o.change_key, o.attempts, c.collapse, c.urgency, c.payloads, "
            f"{columns} FROM notify_outbox o JOIN notify_changes c ON c.key = o.change_key "
            "JOIN notify_subscriptions s ON s.id = o.subscription_id "
            "WHERE o.state = 'pending' AND o.due_at <= $1 ORDER BY o.due_at LIMIT $2",
            now,
            limit,
        )
        return [
            Delivery(r[0], _subscription(r, 5), r[1], r[2], r[3], json.loads(r[4])) for r in rows
        ]

    async def settle(
        self,
        *,
        sent: Sequence[tuple[str, str]] = (),
        failed: Sequence[tuple[str, str]] = (),
        retries: Sequence[tuple[str, str, float]] = (),
        gone: Sequence[str] = (),
    ) -> None:
        async with self.pool.acquire() as db, db.transaction():
            for state, pairs in (("sent", sent), ("failed", failed)):
                if pairs:
                    await db.executemany(
                        "UPDATE notify_outbox SET state = $1 "
                        "WHERE change_key = $2 AND subscription_id = $3",
                        [(state, key, sub) for key, sub in pairs],
                    )
            if retries:
                await db.executemany(
                    "UPDATE notify_outbox SET attempts = attempts + 1, due_at = $1 "
                    "WHERE change_key = $2 AND subscription_id = $3",
                    [(due, key, sub) for key, sub, due in retries],
                )
            if gone:
                await db.executemany(
                    "DELETE FROM notify_subscriptions WHERE id = $1", [(sub,) for sub in gone]
                )

    async def states(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT state, count(*) FROM notify_outbox GROUP BY state")
        return {row[0]: int(row[1]) for row in rows}


async def _index_topics(db: asyncpg.Connection, sub_id: str, topics: dict[str, Any]) -> None:
    await db.executemany(
        "INSERT INTO notify_subscription_topics (topic, subscription_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        [(key, sub_id) for key in topic_keys(topics)],
    )
