"""The ingest benchmark's yardstick: an aiohttp server that only reads and parses the body.

`POST /runs` and `POST /webhooks/apify` read the whole body, parse it with orjson (as runledger
does) and answer 202 with a small JSON object; `GET /health` answers 200. No authentication,
no database, no logging: what aiohttp and JSON parsing cost on this machine, and nothing else.

    .venv/bin/python -m bench.bare_server --port 8181
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import orjson
from aiohttp import web

_ACCEPTED = b'{"outcome":"accepted"}'
BAD_JSON = b'{"error":{"code":"bad_json"}}'


async def accept(request: web.Request) -> web.Response:
    try:
        orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.Response(status=400, body=BAD_JSON, content_type="application/json")
    return web.Response(status=202, body=_ACCEPTED, content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return web.Response(status=200, body=b'{"status":"ok"}', content_type="application/json")


def make_app() -> web.Application:
    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/runs", accept)
    app.router.add_post("/webhooks/apify", accept)
    app.router.add_get("/health", health)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8181)
    args = p.parse_args(argv)
    print(f"bare server on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
