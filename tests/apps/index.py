"""A function moved from SCF's built-in Python runtime: its handler is an Adapter with options."""

from __future__ import annotations

from flask_app import app
from handlers import sync_handler

from scf_asgi import Adapter

main_handler = Adapter(app, base_path="/api", event_handler=sync_handler)
