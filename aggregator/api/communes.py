"""What every list of located items shares: the ``commune`` field and the ``commune=`` filter.

The commune of a record is looked up once per snapshot (see :mod:`aggregator.communes`);
these helpers only read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator.api.params import QueryParams
from aggregator.api.problems import BadParameter
from aggregator.api.routing import Param
from aggregator.api.schemas import nullable, obj, ref
from aggregator.communes import CODE_PATTERN

if TYPE_CHECKING:
    from aggregator.api.routing import ApiRouter
    from aggregator.runtime import Runtime

COMMUNE_SCHEMA = obj(
    {
        "code": {"type": "string", "pattern": f"^{CODE_PATTERN.pattern}$"},
        "name": {"type": "string"},
    },
    ["code", "name"],
    title="Commune",
    description="The commune (INSEE code and name) whose boundary covers the item, from the "
    "deployment's communes source.",
)
#: The ``commune`` property of a located item: null outside every configured commune (or
#: before the communes are loaded).
COMMUNE_FIELD = nullable(ref("Commune"))

COMMUNE_PARAM = Param(
    "commune",
    "Only items in this commune: its INSEE code (5 characters, e.g. 59350 for Lille), one of "
    "the communes source's.",
    {"type": "string", "pattern": f"^{CODE_PATTERN.pattern}$", "examples": ["59350"]},
)


def add_commune_schema(router: ApiRouter) -> None:
    """Declare the ``Commune`` component (once; every list registering it shares it)."""
    router.add_schema("Commune", COMMUNE_SCHEMA)


def wanted_commune(params: QueryParams, runtime: Runtime) -> str | None:
    """The ``commune=`` of a request, checked: its form, then that the communes know it."""
    code = params.matching("commune", CODE_PATTERN, "commune_code_form")
    if code is not None and code not in runtime.communes.index().position:
        raise BadParameter("commune", "unknown_commune", value=repr(code))
    return code


def with_commune(entry: dict[str, Any], commune: dict[str, str] | None) -> dict[str, Any]:
    """``entry`` with its ``commune`` set (a fresh dict per answer: never the stored one)."""
    entry["commune"] = commune
    return entry
