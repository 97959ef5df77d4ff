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
