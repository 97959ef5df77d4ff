"""The texts of problems: each ``detail`` under a stable code, in French and English, and a
description of each problem ``type`` (served at ``/problems/{code}``, where a problem's
``type`` points).

Handlers raise a problem with a code of :data:`REASONS` and the fields its text names (a
parameter's value, a source id); the text is written in the answer's language when the
problem is answered. Values a client sent are inserted as they are, in both languages.
"""

from __future__ import annotations

from collections.abc import Mapping

from aggregator.api.messages import PROBLEM_DETAILS

#: Why a request failed (``detail``, and ``errors[].detail`` of a bad parameter).
REASONS: Mapping[str, Mapping[str, str]] = {
    **PROBLEM_DETAILS,
    # Query parameters (params.py and the routes).
    "too_long": {
        "en": "is longer than {maximum} characters",
        "fr": "dépasse {maximum} caractères",
    },
    "empty": {"en": "must not be empty", "fr": "ne doit pas être vide"},
    "not_an_integer": {"en": "{value} is not an integer", "fr": "{value} n'est pas un entier"},
    "not_a_number": {"en": "{value} is not a number", "fr": "{value} n'est pas un nombre"},
    "out_of_range": {
        "en": "must be between {minimum} and {maximum}, got {value}",
        "fr": "doit être entre {minimum} et {maximum}, reçu {value}",
    },
    "not_a_boolean": {
        "en": "{value} is not a boolean (use true or false)",
        "fr": "{value} n'est pas un booléen (true ou false)",
    },
    "not_one_of": {
        "en": "{value} is not one of: {choices}",
        "fr": "{value} ne fait pas partie de : {choices}",
    },
    "not_configured_source": {
        "en": "{value} is not a configured source of this kind",
        "fr": "{value} n'est pas une source de ce type configurée ici",
    },
    "unknown_commune": {
        "en": "{value} is not the INSEE code of a commune this server knows",
        "fr": "{value} n'est le code INSEE d'aucune commune connue de ce serveur",
    },
    "bbox_form": {
        "en": "{value} is not a box: west,south,east,north in degrees, e.g. 2.3,48.8,2.4,48.9",
        "fr": "{value} n'est pas un rectangle : ouest,sud,est,nord en degrés, par exemple "
        "2.3,48.8,2.4,48.9",
    },
    "ogc_bbox_form": {
        "en": "{value} is not a box: west,south,east,north in degrees (CRS84), or six numbers "
        "with heights, e.g. 1.05,49.43,1.11,49.46",
        "fr": "{value} n'est pas un rectangle : ouest,sud,est,nord en degrés (CRS84), ou six "
        "nombres avec les hauteurs, par exemple 1.05,49.43,1.11,49.46",
    },
    "commune_code_form": {
        "en": "{value} is not an INSEE commune code (5 characters, e.g. 59350 or 2A004)",
        "fr": "{value} n'est pas un code commune INSEE (5 caractères, par exemple 59350 ou 2A004)",
    },
    "not_a_datetime": {
        "en": "{value} is not a date-time (example: 2026-03-29T08:00:00+02:00)",
        "fr": "{value} n'est pas une date et heure (exemple : 2026-03-29T08:00:00+02:00)",
    },
    "not_a_date": {
        "en": "{value} is not a date (e.g. 2026-03-29)",
        "fr": "{value} n'est pas une date (ex. 2026-03-29)",
    },
    "year_out_of_range": {
        "en": "must be between the years {minimum} and {maximum}",
        "fr": "doit être entre les années {minimum} et {maximum}",
    },
    "list_empty": {"en": "must list at least one value", "fr": "doit lister au moins une valeur"},
    "list_too_long": {
        "en": "lists more than {maximum} values",
        "fr": "liste plus de {maximum} valeurs",
    },
    "unknown_parameter": {
        "en": "unknown parameter; did you mean {suggestion}?",
        "fr": "paramètre inconnu ; vouliez-vous dire {suggestion} ?",
    },
    "unknown_parameter_accepted": {
        "en": "unknown parameter; accepted: {accepted}",
        "fr": "paramètre inconnu ; acceptés : {accepted}",
    },
    "unknown_parameter_none": {
        "en": "unknown parameter; none are accepted",
        "fr": "paramètre inconnu ; aucun n'est accepté",
    },
    "cursor_unknown": {
        "en": "is not a cursor this server issued",
        "fr": "n'est pas un curseur émis par ce serveur",
    },
    "cursor_other_query": {
        "en": "belongs to a different query; start again without it",
        "fr": "appartient à une autre requête ; recommencez sans lui",
    },
    "sync_token_unknown": {
        "en": "is not a sync token this server issued",
        "fr": "n'est pas un jeton de synchronisation émis par ce serveur",
    },
    "sync_other_query": {
        "en": "belongs to other filters or another list; start again with sync=start",
        "fr": "appartient à d'autres filtres ou à une autre liste ; recommencez avec sync=start",
    },
    "updated_since_replaced": {
        "en": "was replaced by sync: ask sync=start once, then pass back meta.sync_token",
        "fr": "est remplacé par sync : demandez sync=start une fois, puis renvoyez meta.sync_token",
    },
    "unknown_field": {
        "en": "{value} is not a field of these items ({accepted})",
        "fr": "{value} n'est pas un champ de ces éléments ({accepted})",
    },
    "not_in_calendar_export": {
        "en": "is not accepted by a calendar export (it holds every match)",
        "fr": "n'est pas accepté par un export de calendrier (il contient tout)",
    },
    "export_too_large": {
        "en": "this export would hold more than {maximum} rows or {megabytes} MB, the most one "
        "file holds; narrow the filters (from/to, category, source, a radius)",
        "fr": "cet export dépasserait {maximum} lignes ou {megabytes} Mo, le maximum d'un "
        "fichier ; restreignez les filtres (from/to, category, source, un rayon)",
    },
    "sync_not_sortable": {
        "en": "a sync is in change order; it cannot be sorted",
        "fr": "une synchronisation suit l'ordre des changements ; elle ne se trie pas",
    },
    "open_now_or_open_at": {
        "en": "give open_now or open_at, not both",
        "fr": "donnez open_now ou open_at, pas les deux",
    },
    "lat_lon_required": {"en": "lat and lon are required", "fr": "lat et lon sont requis"},
    "lat_lon_together": {"en": "lat and lon go together", "fr": "lat et lon vont ensemble"},
    "radius_needs_point": {"en": "needs lat and lon", "fr": "demande lat et lon"},
    "distance_needs_point": {
        "en": "sorting by distance needs lat and lon",
        "fr": "le tri par distance demande lat et lon",
    },
    "not_a_duration": {
        "en": "{value} is not a duration (e.g. 90m, 2h)",
        "fr": "{value} n'est pas une durée (ex. 90m, 2h)",
    },
    "duration_out_of_range": {
        "en": "must be between 1m and 24h",
        "fr": "doit être entre 1m et 24h",
    },
    "to_before_from": {"en": "must be after 'from'", "fr": "doit être après 'from'"},
    "range_too_long": {
        "en": "the range may span at most 366 days",
        "fr": "la période ne peut dépasser 366 jours",
    },
    "not_with_sync": {
        "en": "depends on the clock and cannot go with sync (a sync sends what changed)",
        "fr": "dépend de l'heure et ne peut pas accompagner sync (qui envoie ce qui a changé)",
    },
    "sync_json_only": {
        "en": "is answered in JSON only, not GeoJSON",
        "fr": "n'est répondu qu'en JSON, pas en GeoJSON",
    },
    "bbox_order": {
        "en": "must be west,south,east,north with west <= east, south <= north",
        "fr": "doit être ouest,sud,est,nord avec ouest <= est, sud <= nord",
    },
    "not_a_namespaced_id": {
        "en": "{value} is not an id like 'feed:native_id'",
        "fr": "{value} n'est pas un identifiant de la forme 'flux:id_natif'",
    },
    "follow_something": {
        "en": "follow at least one stop (stops=) or line (lines=)",
        "fr": "suivez au moins un arrêt (stops=) ou une ligne (lines=)",
    },
    # Notification topics: news and waste (aggregator/notify/topics.py).
    "topic_not_a_list": {
        "en": "must be an array of strings",
        "fr": "doit être un tableau de chaînes",
    },
    "topic_not_a_string": {"en": "must be a string", "fr": "doit être une chaîne"},
    "news_category_unknown": {
        "en": "{value} is not a category of the news served here",
        "fr": "{value} n'est pas une catégorie des actualités servies ici",
    },
    "news_source_unknown": {
        "en": "{value} is not a loaded news source",
        "fr": "{value} n'est pas une source d'actualités chargée",
    },
    "news_pairs_too_many": {
        "en": "categories × sources make more than {maximum} topics",
        "fr": "catégories × sources font plus de {maximum} sujets",
    },
    "waste_point_expected": {
        "en": "must be a point: an object with lat and lon",
        "fr": "doit être un point : un objet avec lat et lon",
    },
    "waste_outside_zones": {
        "en": "the point is in none of the waste collection zones served here",
        "fr": "le point n'est dans aucune des zones de collecte des déchets servies ici",
    },
    # Things that do not exist.
    "no_source": {"en": "no source {source} is configured", "fr": "aucune source {source} ici"},
    "no_records_view": {
        "en": "source {source} ({kind}) has no plain records view",
        "fr": "la source {source} ({kind}) n'a pas de vue en enregistrements simples",
    },
    "no_stop": {"en": "no stop {value}", "fr": "aucun arrêt {value}"},
    "no_place": {"en": "no place {value}", "fr": "aucun lieu {value}"},
    # OGC API Features (aggregator.api.features).
    "no_collection": {"en": "no collection {value}", "fr": "aucune collection {value}"},
    "no_feature": {
        "en": "no feature {value} in the collection {collection}",
        "fr": "aucun objet {value} dans la collection {collection}",
    },
    "bbox_south_north": {
        "en": "the south edge (2nd number) must not be north of the north edge",
        "fr": "le bord sud (2e nombre) ne doit pas être au nord du bord nord",
    },
    "datetime_form": {
        "en": "{value} is not an instant nor an interval start/end ('..' for an open end)",
        "fr": "{value} n'est ni un instant ni un intervalle début/fin ('..' pour un bout ouvert)",
    },
    "datetime_interval": {
        "en": "{value}: the start must not be after the end, and one end must be given",
        "fr": "{value} : le début ne doit pas être après la fin, et un bout doit être donné",
    },
    "no_news_item": {"en": "no news item {value}", "fr": "aucune actualité {value}"},
    "no_searchable_word": {
        "en": "has no searchable word",
        "fr": "ne contient aucun mot cherchable",
    },
    "no_line": {"en": "no line {value}", "fr": "aucune ligne {value}"},
    "no_trip": {"en": "no trip {value}", "fr": "aucun trajet {value}"},
    "no_event": {
        "en": "no event occurrence {value}",
        "fr": "aucune occurrence d'événement {value}",
    },
    "unknown_ids": {
        "en": "unknown ids: {ids}",
        "fr": "identifiants inconnus : {ids}",
    },
    # Access, limits, the server's state.
    "origin_not_allowed": {
        "en": "this origin is not allowed to call the API",
        "fr": "cette origine n'est pas autorisée à appeler l'API",
    },
    "header_not_allowed": {
        "en": "request header not allowed: {headers}",
        "fr": "en-tête de requête non autorisé : {headers}",
    },
    "read_only": {
        "en": "{method} is not supported; the API is read-only",
        "fr": "{method} n'est pas accepté ; l'API est en lecture seule",
    },
    "http_error": {
        "en": "the request could not be served (HTTP {status})",
        "fr": "la requête n'a pas pu être servie (HTTP {status})",
    },
    "rate_limited": {
        "en": "this client made too many requests; retry in {wait}s",
        "fr": "ce client a fait trop de requêtes ; réessayez dans {wait} s",
    },
    "server_streams_full": {
        "en": "this server follows as many live streams as it can; retry later",
        "fr": "ce serveur suit déjà autant de flux qu'il le peut ; réessayez plus tard",
    },
    "client_streams_full": {
        "en": "this client already has {maximum} live streams open, the most one client may "
        "(server.max_streams_per_client); close one first",
        "fr": "ce client a déjà {maximum} flux ouverts, le maximum pour un client "
        "(server.max_streams_per_client) ; fermez-en un d'abord",
    },
    "admin_disabled": {
        "en": "the admin API is disabled: set server.admin_token",
        "fr": "l'API d'administration est désactivée : définissez server.admin_token",
    },
    "admin_throttled": {
        "en": "this client failed the admin authentication too often; retry in {wait}s",
        "fr": "ce client a échoué trop souvent à s'authentifier ; réessayez dans {wait} s",
    },
    "admin_token_needed": {
        "en": "this needs the admin token: Authorization: Bearer <token>",
        "fr": "il faut le jeton d'administration : Authorization: Bearer <jeton>",
    },
    "not_a_poller": {
        "en": "this process does not poll; ask a poller process",
        "fr": "ce processus n'interroge pas les sources ; demandez à un processus qui le fait",
    },
    "polled_elsewhere": {
        "en": "another poller polls this source ({holder})",
        "fr": "un autre processus interroge cette source ({holder})",
    },
    "no_config_file": {
        "en": "this process was not started from a config file",
        "fr": "ce processus n'a pas été démarré depuis un fichier de configuration",
    },
    "config_invalid": {
        "en": "{count} problem(s) in {path}; the running configuration is kept",
        "fr": "{count} problème(s) dans {path} ; la configuration en cours est conservée",
    },
    "no_problem_type": {
        "en": "no problem type {value}",
        "fr": "aucun type de problème {value}",
    },
    # Subscriptions (aggregator/notify): the request body, field by field.
    "notifications_disabled": {
        "en": "notifications are not enabled on this server",
        "fr": "les notifications ne sont pas activées sur ce serveur",
    },
    "no_subscription": {
        "en": "no subscription with this id and secret",
        "fr": "aucun abonnement avec cet identifiant et ce secret",
    },
    "body_too_large": {
        "en": "is larger than {maximum} bytes",
        "fr": "dépasse {maximum} octets",
    },
    "body_not_json": {"en": "is not JSON", "fr": "n'est pas du JSON"},
    "not_an_object": {"en": "must be a JSON object", "fr": "doit être un objet JSON"},
    "unknown_body_field": {
        "en": "unknown field; accepted: {accepted}",
        "fr": "champ inconnu ; acceptés : {accepted}",
    },
    "not_a_string": {
        "en": "must be a non-empty string",
        "fr": "doit être une chaîne non vide",
    },
    "too_many_bytes": {
        "en": "is longer than {maximum} bytes",
        "fr": "dépasse {maximum} octets",
    },
    "not_base64url": {
        "en": "is not base64url (A-Z a-z 0-9 - _)",
        "fr": "n'est pas du base64url (A-Z a-z 0-9 - _)",
    },
    "base64url_truncated": {
        "en": "is not base64url: no encoding has this length",
        "fr": "n'est pas du base64url : aucun encodage n'a cette longueur",
    },
    "wrong_byte_count": {
        "en": "must decode to {expected} bytes, not {actual}",
        "fr": "doit se décoder en {expected} octets, pas {actual}",
    },
    "not_a_p256_point": {
        "en": "is not a point of the P-256 curve",
        "fr": "n'est pas un point de la courbe P-256",
    },
    "not_a_url": {"en": "is not a URL", "fr": "n'est pas une URL"},
    "not_https": {"en": "must be an https URL", "fr": "doit être une URL https"},
    "url_with_credentials": {
        "en": "may not carry credentials",
        "fr": "ne doit pas contenir d'identifiants",
    },
    "host_unresolved": {
        "en": "its host {host} does not resolve",
        "fr": "son hôte {host} ne se résout pas",
    },
    "host_not_public": {
        "en": "its host resolves to a private, loopback or reserved address",
        "fr": "son hôte se résout en une adresse privée, locale ou réservée",
    },
    "fcm_not_configured": {
        "en": "fcm is not configured on this server",
        "fr": "fcm n'est pas configuré sur ce serveur",
    },
    "not_an_fcm_token": {
        "en": "is not an FCM registration token",
        "fr": "n'est pas un jeton d'enregistrement FCM",
    },
    "not_a_string_array": {
        "en": "must be an array of strings",
        "fr": "doit être un tableau de chaînes",
    },
    "too_many_topics": {
        "en": "at most {maximum} topics in all",
        "fr": "au plus {maximum} sujets en tout",
    },
    "not_a_loaded_line": {
        "en": "{value} is not a line of a loaded feed",
        "fr": "{value} n'est une ligne d'aucun flux chargé",
    },
    "not_a_loaded_stop": {
        "en": "{value} is not a stop of a loaded feed",
        "fr": "{value} n'est un arrêt d'aucun flux chargé",
    },
    "categories_need_agenda": {
        "en": "only with agenda: true",
        "fr": "seulement avec agenda: true",
    },
    "follow_a_topic": {
        "en": "follow at least one line, stop, the agenda, a news category or source, or a "
        "waste collection point",
        "fr": "suivez au moins une ligne, un arrêt, l'agenda, une catégorie ou une source "
        "d'actualités, ou un point de collecte des déchets",
    },
}

#: What each problem ``type`` means and what to do about it (``/problems/{code}``).
TYPE_DESCRIPTIONS: Mapping[str, Mapping[str, str]] = {
    "sync_expired": {
        "en": "The sync token is older than what the server remembers (tombstones are kept 7 "
        "days): drop the local copy and start again with sync=start.",
        "fr": "Le jeton de synchronisation est plus ancien que ce dont le serveur se souvient "
        "(7 jours) : repartez de zéro avec sync=start.",
    },
    "sync_not_ready": {
        "en": "The process that answered has not caught up with newer data yet; retry after "
        "Retry-After.",
        "fr": "Le processus qui a répondu n'a pas encore rattrapé les données plus récentes ; "
        "réessayez après Retry-After.",
    },
    "invalid_parameter": {
        "en": "A query or path parameter, or a field of the request body, is missing, "
        "malformed or unknown; errors[] names each one and why. Fix the request; retrying it "
        "unchanged fails again.",
        "fr": "Un paramètre de requête ou de chemin, ou un champ du corps de la requête, "
        "manque, est mal formé ou inconnu ; errors[] nomme chacun et dit pourquoi. Corrigez "
        "la requête.",
    },
    "not_found": {
        "en": "What the request names (an endpoint, a stop, a line, an event, a subscription "
        "with its secret) does not exist in the data served now.",
        "fr": "Ce que la requête nomme (point d'accès, arrêt, ligne, événement, abonnement "
        "avec son secret) n'existe pas dans les données servies.",
    },
    "method_not_allowed": {
        "en": "The API is read-only: GET, HEAD and OPTIONS (admin and subscriptions: POST, "
        "PATCH, DELETE where documented; Allow lists what a path takes).",
        "fr": "L'API est en lecture seule : GET, HEAD et OPTIONS (administration et "
        "abonnements : POST, PATCH, DELETE où c'est dit ; Allow liste ce qu'un chemin accepte).",
    },
    "unauthorized": {
        "en": "The admin endpoints need Authorization: Bearer with the server's admin token.",
        "fr": "Les points d'accès d'administration demandent Authorization: Bearer et le jeton.",
    },
    "forbidden": {
        "en": "The request is refused: an origin or header CORS does not allow, a "
        "disabled admin API, or notifications not enabled on this server.",
        "fr": "La requête est refusée : origine ou en-tête non autorisés par CORS, API "
        "d'administration désactivée, ou notifications non activées sur ce serveur.",
    },
    "not_ready": {
        "en": "The server cannot answer now (its sources are loading, or it is full); "
        "retry after Retry-After.",
        "fr": "Le serveur ne peut pas répondre maintenant ; réessayez après Retry-After.",
    },
    "internal_error": {
        "en": "The server failed; the incident id in detail is in its log.",
        "fr": "Le serveur a échoué ; l'identifiant d'incident du détail est dans son journal.",
    },
    "rate_limited": {
        "en": "This client sent too many requests; retry after Retry-After seconds.",
        "fr": "Ce client a envoyé trop de requêtes ; réessayez après Retry-After secondes.",
    },
    "too_many_streams": {
        "en": "This client has as many live streams open as one client may; close one.",
        "fr": "Ce client a autant de flux ouverts qu'il est permis ; fermez-en un.",
    },
    "admin_throttled": {
        "en": "Too many failed admin authentications from this client; retry later.",
        "fr": "Trop d'authentifications d'administration échouées ; réessayez plus tard.",
    },
    "invalid_config": {
        "en": "The configuration file has errors (listed); the running one is kept.",
        "fr": "Le fichier de configuration a des erreurs (listées) ; l'actuelle est gardée.",
    },
    "conflict": {
        "en": "The request conflicts with this process's role (not a poller, another holds "
        "the source, no config file).",
        "fr": "La requête ne convient pas au rôle de ce processus.",
    },
    "export_too_large": {
        "en": "A CSV export holds the whole filtered set, up to a bound (in detail): narrow "
        "the filters, or page through the JSON list with its cursor.",
        "fr": "Un export CSV contient tout l'ensemble filtré, jusqu'à une limite (dans detail) : "
        "restreignez les filtres, ou parcourez la liste JSON avec son curseur.",
    },
    "error": {
        "en": "An HTTP error the other types do not cover; see status and detail.",
        "fr": "Une erreur HTTP que les autres types ne couvrent pas ; voir status et detail.",
    },
}
