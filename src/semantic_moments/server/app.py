"""A local web app over an index: browse clips, search by example, re-weight at query time, explain.

``create_app(index_path)`` returns a FastAPI app (OpenAPI docs at ``/docs``) serving one page and a
JSON API. Security model: it is meant for 127.0.0.1 (the CLI binds there unless told otherwise);
files are served only by index id or upload token, never by a path from the request, so nothing
outside the index can be read; uploads are limited in size and type, must decode as video, and are
written to a private temporary folder, never into the indexed folders.

The app is assembled here from routers by concern, which share ``dependencies.py`` (the state, the
lookups) and depend one way: ``state.py`` <- ``models.py`` <- ``dependencies.py`` <- ``clips.py``
(the clips, videos, thumbnails), ``organize.py`` (the map, duplicates), ``uploads.py`` (query
clips), ``search.py`` (search, timeline, explain) <- ``app.py``. Request guards: ``guards.py``, ``protocol.py``; slow work: ``work.py``.
"""

import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from . import clips, organize, search, uploads
from .guards import BODY_IDLE_SECONDS, LOCAL_HOSTS, RequestGuard
from .state import ServerState

STATIC = Path(__file__).parent / "static"


def _serve_api_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the local ``swagger-ui-bundle`` package (the default page loads it from
    a CDN and stays blank offline); without the package, /docs says how to get it."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui_bundle
    except ImportError:
        @app.get("/docs", include_in_schema=False)
        def docs_missing() -> HTMLResponse:
            return HTMLResponse("<p>API docs need <code>pip install swagger-ui-bundle</code>; the OpenAPI schema is "
                                "at <a href='/openapi.json'>/openapi.json</a>.</p>")
        return
    app.mount("/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="semantic-moments API",
                                   swagger_js_url="/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger/swagger-ui.css",
                                   swagger_favicon_url="/swagger/favicon-32x32.png")


def create_app(
    index_path: str | os.PathLike[str],
    upload_dir: str | os.PathLike[str] | None = None,
    max_upload_mb: float = 200.0,
    max_uploads: int = 50,
    allowed_hosts: tuple[str, ...] = (),
    body_idle_seconds: float = BODY_IDLE_SECONDS,
):
    """The FastAPI app over the index at ``index_path``. Raises SemanticMomentsError if it is missing
    or empty, or if ``upload_dir`` lies inside an indexed folder. ``allowed_hosts``: host names
    answered besides 127.0.0.1, localhost and [::1]; ``body_idle_seconds``: how long a request body may
    send nothing (guards.py). Uploads live in a folder of the server's own (inside ``upload_dir``
    when given), emptied when it starts and when it stops."""
    state = ServerState(Path(index_path), Path(upload_dir) if upload_dir else None, max_upload_mb, max_uploads)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        shutil.rmtree(state.upload_dir, ignore_errors=True)  # ours alone: uploads live as long as the server

    app = FastAPI(title="semantic-moments", description="Search a motion index by example.", version="1",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.semantic_moments = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _serve_api_docs(app)
    app.add_middleware(RequestGuard, allowed_hosts=(*LOCAL_HOSTS, *allowed_hosts),
                       max_upload_bytes=state.max_upload_bytes + 64 * 1024,  # multipart headers on top of the file
                       body_idle_seconds=body_idle_seconds)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        """422 with where and why only: the offending input may not even be JSON (NaN, huge ints)."""
        detail = [{"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", "invalid"))}
                  for item in error.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (STATIC / "index.html").read_text()

    for router in (clips.router, organize.router, uploads.router, search.router):
        app.include_router(router)
    return app
