"""``GET /problems/{code}``: what a problem ``type`` means, served by the server itself.

Every problem this server answers has a ``type`` pointing here, so a developer who meets one
can open its URI and read what it means and what to do, in French or English.
"""

from __future__ import annotations

from aiohttp import web

from aggregator.api.i18n import negotiate_language
from aggregator.api.messages import PROBLEM_TITLES, message, text_language
from aggregator.api.problem_texts import TYPE_DESCRIPTIONS
from aggregator.api.problems import TYPE_PATH, NotFound
from aggregator.api.results import ApiResult
from aggregator.api.routing import ApiRouter, Param
from aggregator.runtime import runtime_of

#: The problem codes with a page; every ``type`` a problem carries is one of them.
PROBLEM_CODES = tuple(TYPE_DESCRIPTIONS)


async def problem_type(request: web.Request) -> ApiResult:
    code = request.match_info["code"]
    if code not in TYPE_DESCRIPTIONS:
        raise NotFound("no_problem_type", value=repr(code))
    language = negotiate_language(request, runtime_of(request).languages)
    return ApiResult(
        {
            "type": TYPE_PATH + code,
            "code": code,
            "title": message(PROBLEM_TITLES, code, language),
            "description": message(TYPE_DESCRIPTIONS, code, language),
            "language": text_language(language),
            "documentation": "docs/API.md#problems",
        },
        language=language,
        # Written in the message languages only: a third served language gets English.
        content_language=text_language(language) == language,
        max_age=3600,
    )


def register_problem_routes(router: ApiRouter) -> None:
    router.get(
        TYPE_PATH + "{code}",
        problem_type,
        summary="What a problem type means (the page a problem's type points to)",
        tags=["operations"],
        params=[
            Param(
                "code",
                "A problem code.",
                {"type": "string", "enum": list(PROBLEM_CODES)},
                "path",
                required=True,
            )
        ],
        response={
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "code": {"type": "string", "enum": list(PROBLEM_CODES)},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "language": {"type": "string", "enum": ["en", "fr"]},
                "documentation": {"type": "string"},
            },
            "required": ["type", "code", "title", "description", "language", "documentation"],
        },
        errors=[400, 404],
    )
