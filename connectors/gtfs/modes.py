"""route_type codes (basic GTFS and the extended HVT codes) to a mode name for phones."""

from __future__ import annotations

BASIC_MODES = {
    0: "tram",
    1: "subway",
    2: "rail",
    3: "bus",
    4: "ferry",
    5: "cable_tram",
    6: "aerial_lift",
    7: "funicular",
    11: "trolleybus",
    12: "monorail",
}

# Extended route types come in blocks of a hundred (Google's HVT list).
EXTENDED_BLOCKS = {
    1: "rail",
    2: "coach",
    3: "rail",  # suburban railway
    4: "subway",  # urban railway / metro
    5: "subway",
    6: "subway",
    7: "bus",
    8: "trolleybus",
    9: "tram",
    10: "ferry",
    11: "air",
    12: "ferry",
    13: "aerial_lift",
    14: "funicular",
    15: "taxi",
    16: "other",
    17: "other",
}


def mode_name(route_type: int) -> str:
    """A short, stable mode name for a GTFS ``route_type``; ``"other"`` when unknown."""
    if route_type in BASIC_MODES:
        return BASIC_MODES[route_type]
    return EXTENDED_BLOCKS.get(route_type // 100, "other") if route_type >= 100 else "other"


#: Every name :func:`mode_name` gives, the vocabulary of a line's ``mode``.
MODES: tuple[str, ...] = tuple(
    dict.fromkeys([*BASIC_MODES.values(), *EXTENDED_BLOCKS.values(), "other"])
)
