"""The server's own texts, each under a stable code, in French and English.

A client shows ``message`` to people and branches on ``code``, which never changes. The texts
are written here, not in the handlers, so every one of them exists in both languages (a test
checks it). A deployment serving another language gets the English text.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The languages every message is written in; the first is the fallback.
MESSAGE_LANGUAGES = ("en", "fr")

#: Why a departure board is empty (``explanation``).
EXPLANATIONS: Mapping[str, Mapping[str, str]] = {
    "outside_feed_validity": {
        "en": "The timetable has no service on that date: the feed does not cover it.",
        "fr": "Les horaires ne couvrent pas cette date : aucun service n'y est prévu.",
    },
    "no_service_that_day": {
        "en": "No line calls at this stop on that day.",
        "fr": "Aucune ligne ne dessert cet arrêt ce jour-là.",
    },
    "terminus": {
        "en": "Vehicles only arrive here: this stop is the end of every line that calls.",
        "fr": "Les véhicules ne font qu'arriver ici : cet arrêt est le terminus de toutes "
        "les lignes qui le desservent.",
    },
    "no_more_departures_in_window": {
        "en": "No more departures in the requested window.",
        "fr": "Plus aucun départ dans la période demandée.",
    },
}

#: Why a part of ``/v1/home`` shows what it shows (``reason``; see aggregator.api.parts).
PART_REASONS: Mapping[str, Mapping[str, str]] = {
    "ok": {
        "en": "Up to date.",
        "fr": "À jour.",
    },
    "empty": {
        "en": "Nothing to show here now.",
        "fr": "Rien à afficher ici pour le moment.",
    },
    "no_source": {
        "en": "No source provides this.",
        "fr": "Aucune source ne fournit ces données.",
    },
    "loading": {
        "en": "The data is still loading.",
        "fr": "Les données sont en cours de chargement.",
    },
    "failing": {
        "en": "The source of this data is failing; nothing can be shown.",
        "fr": "La source de ces données est en panne ; rien ne peut être affiché.",
    },
    "stale": {
        "en": "This data is out of date.",
        "fr": "Ces données ne sont pas à jour.",
    },
    "not_served": {
        "en": "This server does not serve this part.",
        "fr": "Ce serveur ne fournit pas cette partie.",
    },
    "failed": {
        "en": "This part could not be computed; the other parts are complete.",
        "fr": "Cette partie n'a pas pu être calculée ; les autres parties sont complètes.",
    },
}
#: The former name of :data:`PART_REASONS` (``unavailable`` carries the same codes).
UNAVAILABLE = PART_REASONS

#: Why ``/v1/waste/collections`` has no collection for a point (``explanation``).
WASTE_EXPLANATIONS: Mapping[str, Mapping[str, str]] = {
    "outside_zones": {
        "en": "This address is in none of the collection zones served here.",
        "fr": "Cette adresse n'est dans aucune des zones de collecte connues ici.",
    },
    "no_upcoming_collection": {
        "en": "No collection is planned in the coming weeks for this zone.",
        "fr": "Aucune collecte n'est prévue dans les semaines à venir pour cette zone.",
    },
    "no_source": {
        "en": "No source provides collection zones.",
        "fr": "Aucune source ne fournit de zones de collecte.",
    },
}

#: What an export that cannot carry HTTP headers once saved (a calendar file) says of the terms
#: of reuse of its sources: ``terms`` lists "source: licence, attribution" items.
EXPORT_TERMS: Mapping[str, Mapping[str, str]] = {
    "terms": {
        "en": "Sources and their terms of reuse: {terms}.",
        "fr": "Sources et conditions de réutilisation : {terms}.",
    },
    "share_alike": {
        "en": "The data of {sources} is under a share-alike licence: what is derived from it "
        "must be shared under the same licence.",
        "fr": "Les données de {sources} sont sous une licence de partage à l'identique : ce qui "
        "en est dérivé doit être partagé sous la même licence.",
    },
}

#: How to get more of a list than an answer holds (``meta.hint``); ``parameter`` names the
#: query parameter to change.
HINTS: Mapping[str, Mapping[str, str]] = {
    "widen_window": {
        "en": "Fewer departures than asked for in this time window: ask for a longer "
        "window with the {parameter} parameter (up to {maximum}).",
        "fr": "Moins de départs que demandé dans cette période : demandez une période plus "
        "longue avec le paramètre {parameter} (jusqu'à {maximum}).",
    },
}

#: The ``title`` of each problem ``code``.
PROBLEM_TITLES: Mapping[str, Mapping[str, str]] = {
    "invalid_parameter": {"en": "Invalid parameter", "fr": "Paramètre invalide"},
    "not_found": {"en": "Not found", "fr": "Introuvable"},
    "method_not_allowed": {"en": "Method not allowed", "fr": "Méthode non autorisée"},
    "unauthorized": {
        "en": "Missing or wrong admin token",
        "fr": "Jeton d'administration absent ou faux",
    },
    "forbidden": {"en": "Forbidden", "fr": "Interdit"},
    "not_ready": {"en": "Not ready", "fr": "Pas prêt"},
    "internal_error": {"en": "Internal error", "fr": "Erreur interne"},
    "rate_limited": {"en": "Too many requests", "fr": "Trop de requêtes"},
    "too_many_streams": {"en": "Too many streams", "fr": "Trop de flux"},
    "admin_throttled": {
        "en": "Too many failed authentications",
        "fr": "Trop d'authentifications échouées",
    },
    "invalid_config": {"en": "Invalid configuration", "fr": "Configuration invalide"},
    "conflict": {"en": "Conflict", "fr": "Conflit"},
    "sync_expired": {"en": "Sync expired", "fr": "Synchronisation expirée"},
    "sync_not_ready": {"en": "Not ready", "fr": "Pas prêt"},
    "export_too_large": {"en": "Export too large", "fr": "Export trop grand"},
    "error": {"en": "Error", "fr": "Erreur"},
}

#: Problem ``detail`` texts the server writes without data of a source in them.
PROBLEM_DETAILS: Mapping[str, Mapping[str, str]] = {
    "no_endpoint": {
        "en": "no endpoint at {path}",
        "fr": "aucun point d'accès à {path}",
    },
    "method_not_allowed": {
        "en": "{method} is not supported here; allowed: {allowed}",
        "fr": "{method} n'est pas accepté ici ; acceptées : {allowed}",
    },
    "sync_expired": {
        "en": "this sync token is older than what the server remembers; "
        "start again with sync=start",
        "fr": "ce jeton de synchronisation est plus ancien que ce dont le serveur se souvient ; "
        "recommencez avec sync=start",
    },
    "sync_not_ready": {
        "en": "this server is still catching up with the latest data; retry in a moment",
        "fr": "ce serveur rattrape encore les dernières données ; réessayez dans un instant",
    },
    "internal_error": {
        "en": "the server failed to answer; incident {incident} is in its log",
        "fr": "le serveur n'a pas pu répondre ; l'incident {incident} est dans son journal",
    },
}


def text_language(language: str) -> str:
    """The language a message is written in for an answer in ``language`` (fr-BE → fr)."""
    primary = language.split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in MESSAGE_LANGUAGES else MESSAGE_LANGUAGES[0]


def message(
    catalogue: Mapping[str, Mapping[str, str]], code: str, language: str, **fields: str
) -> str:
    """The text of ``code`` in ``language`` (English when it is not a message language)."""
    return catalogue[code][text_language(language)].format(**fields)


def coded(catalogue: Mapping[str, Mapping[str, str]], code: str, language: str) -> dict[str, str]:
    """``{code, message}``: the stable code and its text in ``language``."""
    return {"code": code, "message": message(catalogue, code, language)}
