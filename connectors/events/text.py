"""Text helpers shared by the event connectors and the index.

Two jobs: make feed HTML safe for a phone (a small allow-list, plus a plain-text twin for
lists and notifications), and fold French text into search terms (accents, case, elisions,
plurals, stop words) so that "Fête des Lumières" is found by "fetes lumiere".
"""

from __future__ import annotations

import html
import re
import unicodedata

import nh3

__all__ = [
    "STOP_WORDS",
    "fold",
    "html_to_text",
    "sanitize_html",
    "search_terms",
    "stem",
    "text_to_html",
]

# What a mobile client renders safely: structure and emphasis, links, nothing active.
_SAFE_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "em",
    "h3",
    "h4",
    "i",
    "li",
    "ol",
    "p",
    "strong",
    "u",
    "ul",
}
_SAFE_ATTRIBUTES = {"a": {"href", "title"}}
_URL_SCHEMES = {"http", "https", "mailto", "tel"}

_LOOKS_LIKE_HTML = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>|&[a-zA-Z]+;|&#\d+;")
_BLOCK_BREAK = re.compile(r"<\s*(br|/p|/li|/h\d|/div|/tr|/blockquote)\b[^>]*>", re.IGNORECASE)
_ITEM_START = re.compile(r"<\s*li\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def looks_like_html(text: str) -> bool:
    """Whether a description carries markup (feeds mix plain text and HTML in one field)."""
    return bool(_LOOKS_LIKE_HTML.search(text))


def sanitize_html(fragment: str) -> str:
    """The fragment reduced to the safe subset: scripts, styles, handlers and iframes go."""
    return nh3.clean(
        fragment,
        tags=_SAFE_TAGS,
        attributes=_SAFE_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        # <script>/<style> content is dropped entirely rather than shown as text.
        clean_content_tags={"script", "style"},
    ).strip()


def html_to_text(fragment: str) -> str:
    """Readable plain text of an HTML fragment: line breaks kept, tags and entities gone."""
    marked = _ITEM_START.sub("\n• ", _BLOCK_BREAK.sub("\n", fragment))
    stripped = nh3.clean(marked, tags=set(), clean_content_tags={"script", "style"})
    text = html.unescape(stripped)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    """Plain text as safe HTML: escaped, paragraphs and line breaks kept."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def description_pair(raw: str | None) -> tuple[str, str] | None:
    """(safe HTML, plain text) of a feed description that may or may not be HTML."""
    if raw is None or not raw.strip():
        return None
    if looks_like_html(raw):
        safe = sanitize_html(raw)
        return safe, html_to_text(safe)
    text = raw.strip()
    return text_to_html(text), text


# --- French-aware search terms ------------------------------------------------------------

_STOP_WORDS_TEXT = """a au aux avec ce ces c d dans de des du en et est il elle ils j l la le
    les leur lui m ma mes mon n ne nos notre on ou par pas pour qu que qui s sa se ses son sur t
    ta te tes ton un une vos votre y the of and to in on at for"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lowercase, ligatures expanded and accents stripped: "Œuvre Été" → "oeuvre ete"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES).lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    """A light French stemmer for plurals: chevaux → cheval, concerts → concert, jeux → jeu.

    Deliberately small: it only merges singular and plural, so a prefix query still works
    on the stem and no unrelated words collide.
    """
    if len(word) > 4 and word.endswith("aux"):
        return word[:-3] + "al"
    if len(word) > 3 and word[-1] in "sx" and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def search_terms(text: str) -> list[str]:
    """The stemmed, folded words of ``text`` minus stop words (elisions split on the apostrophe)."""
    return [stem(w) for w in _WORD.findall(fold(text)) if w not in STOP_WORDS]
