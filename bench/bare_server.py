"""The ceiling for API benchmarks: a bare aiohttp handler returning fixed JSON bytes.

Usage: python bench/bare_server.py PORT BODY_FILE
It does nothing per request but hand back the bytes, so the gap between it and Beffroi is
what Beffroi's conventions (envelope, ETag, meta, metrics, CORS, checks) cost.
"""

import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    port, body_file = int(sys.argv[1]), Path(sys.argv[2])
    body = body_file.read_bytes()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
