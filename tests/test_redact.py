"""Tests for aggregator.redact."""

from __future__ import annotations

from aggregator.redact import Redactor


def test_redact_replaces_every_occurrence():
    """Each occurrence of each secret is replaced by ***."""
    redactor = Redactor(["hunter2", "s3cr3t"])
    assert redactor.redact("hunter2 and s3cr3t, again hunter2") == "*** and ***, again ***"


def test_redact_longest_secret_first():
    """A secret that contains another one is masked whole, leaving no tail behind."""
    redactor = Redactor(["abc", "abcdef"])
    assert redactor.redact("token=abcdef;") == "token=***;"


def test_redact_without_secrets_is_identity():
    """A redactor with no secrets (or only empty ones) leaves text alone."""
    assert Redactor().redact("nothing to hide") == "nothing to hide"
    assert Redactor(["", ""]).redact("still nothing") == "still nothing"


def test_redact_masks_percent_encoded_forms():
    """A secret with reserved characters is masked in its URL-encoded spellings too."""
    redactor = Redactor(["a/b+c d"])
    assert redactor.redact("k=a%2Fb%2Bc%20d&l=a%2Fb%2Bc+d") == "k=***&l=***"


def test_redact_treats_secrets_literally():
    """Regex metacharacters in a secret are matched literally."""
    assert Redactor(["a.c"]).redact("abc a.c") == "abc ***"


def test_redact_url_masks_userinfo_password():
    """The password in user:password@host is masked, the user name kept."""
    url = "https://alice:pa%40ss@example.org/feed.json"
    assert Redactor().redact_url(url) == "https://alice:***@example.org/feed.json"


def test_redact_url_masks_raw_at_sign_in_password():
    """A password with an unencoded @ is masked up to the last @ before the host."""
    url = "https://alice:p@ss@example.org/x"
    assert Redactor().redact_url(url) == "https://alice:***@example.org/x"


def test_redact_url_masks_secret_query_params():
    """Values of secret-looking query params are masked whatever their case."""
    url = "https://h/x?apikey=1&API_KEY=2&Token=3&access_token=4&sig=5&Signature=6&page=7"
    assert Redactor().redact_url(url) == (
        "https://h/x?apikey=***&API_KEY=***&Token=***&access_token=***&sig=***&Signature=***&page=7"
    )


def test_redact_url_masks_secret_sounding_variants():
    """Dashed and prefixed names (api-key, client_secret) count as secret-looking too."""
    url = "https://h/x?api-key=1&client_secret=2&password=3&key=4&secret=5&lang=fr"
    assert Redactor().redact_url(url) == (
        "https://h/x?api-key=***&client_secret=***&password=***&key=***&secret=***&lang=fr"
    )


def test_redact_url_keeps_fragment_and_plain_urls():
    """A URL without secrets is returned unchanged, fragment and all."""
    for url in ("https://h/x?a=1&b=&c#frag", "file:relative/feed.ics", "https://h/"):
        assert Redactor().redact_url(url) == url


def test_redact_url_masks_known_secret_in_path():
    """A configured secret is masked wherever it appears, not only in the query."""
    url = "https://h/feeds/s3cr3t/gtfs.zip#apikey=x"
    assert Redactor(["s3cr3t"]).redact_url(url) == "https://h/feeds/***/gtfs.zip#apikey=x"


def test_redact_masks_every_percent_spelling():
    """A known secret is masked raw, percent-encoded in lower or upper hex, partly encoded,
    with + or %20 for a space, and UTF-8 encoded."""
    redactor = Redactor(["p@ss/wörd x"])
    for spelling in (
        "p@ss/wörd x",
        "p%40ss%2Fw%C3%B6rd%20x",
        "p%40ss%2fw%c3%b6rd+x",
        "p%40ss/w%C3%B6rd x",
    ):
        assert redactor.redact(f"<{spelling}>") == "<***>", spelling


def test_redact_text_masks_secret_shapes_it_was_not_told_about():
    """Free text loses URL passwords, secret-looking query values and secret-named header
    values (header lines, dict reprs, byte-tuple reprs), the auth scheme kept."""
    redactor = Redactor()
    cases = {
        "GET http://u:pw1@h/x?apikey=k1&p=2 (ok)": "GET http://u:***@h/x?apikey=***&p=2 (ok)",
        "redis://:pw2@127.0.0.1:6379/0": "redis://:***@127.0.0.1:6379/0",
        "Authorization: Bearer t0k.en": "Authorization: Bearer ***",
        "{'X-Api-Key': 'k2', 'Accept': '*/*'}": "{'X-Api-Key': '***', 'Accept': '*/*'}",
        "[(b'authorization', b'Basic dXNlcg==')]": "[(b'authorization', b'Basic ***')]",
        "client_secret=s3 password: hunter22": "client_secret=*** password: ***",
    }
    for text, expected in cases.items():
        assert redactor.redact_text(text) == expected


def test_redact_text_leaves_ordinary_text_alone():
    """Words that merely resemble secret names, and plain parameters, are kept."""
    text = "tokens: 5, token_count=3, key: stops:42, https://h/x?page=2&lang=fr, no password set"
    assert Redactor().redact_text(text) == text
