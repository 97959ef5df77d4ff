"""The ``notifications:`` section of the config file."""

from __future__ import annotations

import re
from datetime import time

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from aggregator.config.types import Duration


class DeepLinks(BaseModel):
    """URL templates a notification links to; ``{id}`` is the line, stop, alert or event id
    (URL-encoded). An empty template sends no link, or the next one a notice offers (a
    cancelled trip links to its line when there is no trip template)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: str = ""
    stop: str = ""
    alert: str = ""
    event: str = ""
    #: A news item (``{id}``: its id in ``/v1/news``).
    news: str = ""
    #: A cancelled trip, or one that skips a stop: ``{id}`` its id and ``{date}`` its service
    #: day (YYYY-MM-DD), as ``/v1/trips/{id}?date={date}`` takes them.
    trip: str = ""

    @field_validator("*")
    @classmethod
    def _names_what_it_links_to(cls, template: str, info: ValidationInfo) -> str:
        # A template without {id} would send every notification of its kind to one page; a
        # {date} anywhere but in trip would stay empty.
        if template and "{id}" not in template:
            raise ValueError("needs {id} where the id goes (or leave it empty: no link)")
        if "{date}" in template and info.field_name != "trip":
            raise ValueError("{date} is only known for a trip")
        return template


class FcmConfig(BaseModel):
    """Firebase Cloud Messaging (HTTP v1) for app registration tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The service account's JSON key (its text; e.g. ``${FCM_SERVICE_ACCOUNT}``).
    service_account: str = Field(repr=False)
    #: Default: the service account's ``project_id``.
    project_id: str | None = None
    base_url: str = "https://fcm.googleapis.com"
    #: Default: the service account's ``token_uri``.
    token_url: str | None = None


class NotificationsConfig(BaseModel):
    """Push notifications (off unless ``enabled``); see docs/NOTIFICATIONS.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    #: Where subscriptions live: a SQLite file (relative paths: to the config file's folder),
    #: or a ``postgresql://`` URL.
    database: str = Field("beffroi-notifications.sqlite3", repr=False)
    #: The application server's VAPID private key (``beffroi vapid-keys`` prints a pair).
    vapid_private_key: str = Field("", repr=False)
    #: Who the push services may contact about our traffic (RFC 8292 ``sub``): mailto: or https:.
    vapid_subject: str = "mailto:admin@example.invalid"
    deep_links: DeepLinks = Field(default_factory=DeepLinks)
    #: Firebase Cloud Messaging, for apps that register FCM tokens (off when absent).
    fcm: FcmConfig | None = None
    #: Most lines + stops + agenda categories one subscription may follow.
    max_topics: int = Field(50, ge=1, le=1000)
    #: A subscription nobody read or changed through the API for this long is deleted.
    idle_expiry: Duration = 90 * 86400.0
    #: How long a push service keeps an undelivered notification (the TTL header).
    ttl: Duration = 3600.0
    #: Pushes in flight at once.
    concurrency: int = Field(16, ge=1, le=512)
    #: Attempts per notification on 429/5xx before it is given up.
    max_attempts: int = Field(5, ge=1, le=20)
    #: First retry delay when the push service gives no Retry-After (doubles each attempt).
    retry_base: Duration = 2.0
    #: How often the sender looks for new changes and due retries.
    interval: Duration = 1.0
    #: When waste collection reminders go out: this local time (``defaults.timezone``) on the
    #: evening before each collection.
    #: Quoted in YAML ("19:00"): unquoted, YAML 1.1 reads 19:00 as the number 1140.
    waste_reminder_at: time = time(19, 0)
    #: Timeout of one request to a push service.
    push_timeout: Duration = 10.0
    #: Accept push endpoints on loopback/private addresses and plain http: for tests and
    #: development with a local push service only, never in production.
    allow_private_push_endpoints: bool = False

    @field_validator("waste_reminder_at", mode="before")
    @classmethod
    def _local_time(cls, value: object) -> object:
        if isinstance(value, time):
            return value
        if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f'{value!r} is not a local time HH:MM (quote it: "19:00")')
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
