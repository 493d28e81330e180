"""The local web app (``semantic-moments serve``). Needs the ``web`` extra (FastAPI, uvicorn)."""

from .app import create_app

__all__ = ["create_app"]
