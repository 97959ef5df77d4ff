"""A source's licence as its YAML names it: an SPDX identifier, or the URL of the licence.

SPDX identifiers are checked (and their case normalised: ``odbl-1.0`` is ``ODbL-1.0``) against
the SPDX licence list that the ``license-expression`` library ships, so a typo is a config
error with its line, not a wrong label under every answer. An identifier's URL is its page on
spdx.org, which data portals and DCAT-AP harvesters resolve.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from license_expression import Licensing, get_spdx_licensing
from pydantic_core import PydanticCustomError

#: Licences whose derivatives must be shared under the same terms (exports say so).
SHARE_ALIKE = frozenset({"ODbL-1.0", "CC-BY-SA-4.0", "CC-BY-SA-3.0", "CC-BY-SA-2.0"})


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()  # about 0.1 s: only when a config names a licence


def check_licence(value: str) -> str:
    """``value`` normalised: an https/http URL as is, an SPDX identifier in its SPDX case."""
    text = value.strip()
    if text.lower().startswith(("https://", "http://")):
        return text
    result = _licensing().validate(text)
    if result.errors or not result.normalized_expression:
        raise PydanticCustomError(
            "unknown_licence",
            f"{text!r} is neither an SPDX licence identifier (e.g. etalab-2.0 for the Licence "
            "Ouverte, ODbL-1.0, CC-BY-4.0) nor the http(s) URL of a licence",
        )
    return str(result.normalized_expression)


def licence_url(licence: str | None) -> str | None:
    """Where the licence is published: its URL, or its page on spdx.org."""
    if licence is None:
        return None
    if licence.lower().startswith(("https://", "http://")):
        return licence
    return f"https://spdx.org/licenses/{licence}.html"


def licence_terms(licence: str | None, attribution: str | None) -> dict[str, Any]:
    """What an answer's ``meta.sources[id]`` says of a source's terms of reuse."""
    return {
        "licence": licence,
        "licence_url": licence_url(licence),
        "attribution": attribution,
        "share_alike": licence in SHARE_ALIKE,
    }
