"""``serve``: the web page over an index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from .arguments import port_number, positive_float

def add_serve_command(commands) -> None:
    serve = commands.add_parser(
        "serve", help="a local web page to search an index by example",
        description="Serve a page and a JSON API (docs at /docs) over an index: browse clips, search by clicking or "
                    "uploading one, move the appearance-motion slider, see why clips match.")
    serve.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder (built with `index build`)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind; default: %(default)s (this machine only; 0.0.0.0 exposes your index)")
    serve.add_argument("--port", type=port_number, default=8000, help="port, 1-65535; default: %(default)s")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a further host name to answer (a reverse proxy's); repeatable. Requests for any other "
                            "name are refused (DNS rebinding)")
    serve.add_argument("--max-upload-mb", type=positive_float, default=200.0,
                       help="largest accepted upload; default: %(default)s")
    serve.add_argument("--upload-dir", type=Path, default=None,
                       help="where uploads are kept; default: a temporary folder removed on exit")


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server import create_app
    except ImportError:
        raise ConfigError("the web page needs `pip install 'semantic-moments[web]'` (FastAPI, uvicorn)") from None
    import socket

    try:  # a busy port or a bad address fails here, before anything is created or announced
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as error:
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}") from None
    hosts = tuple(args.allowed_host) + ((args.host,) if args.host not in ("0.0.0.0", "::") else ())
    app = create_app(args.index, upload_dir=args.upload_dir, max_upload_mb=args.max_upload_mb, allowed_hosts=hosts)
    print(f"serving {args.index} at http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops", file=sys.stderr)
    from ..server.protocol import HeaderDeadline

    # slow clients are cut off: headers within 10 s (HeaderDeadline), a body never idle 30 s (guards.py),
    # idle kept connections after 5 s; at most 512 connections at once (more get 503)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", http=HeaderDeadline, timeout_keep_alive=5,
                limit_concurrency=512, timeout_graceful_shutdown=5)
    return 0
