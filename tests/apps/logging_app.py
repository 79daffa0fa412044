"""The Flask app, with logging set up at import the way LOGGING_SETUP says: "quiet" sets the
"scf_asgi" logger to WARNING; "basic" configures logging in the app's own format; "default"
calls basicConfig() as many apps do, which leaves the root logger at WARNING."""

from __future__ import annotations

import logging
import os
import sys

from flask_app import app

setup = os.environ.get("LOGGING_SETUP")
if setup == "quiet":
    logging.getLogger("scf_asgi").setLevel(logging.WARNING)
elif setup == "default":
    logging.basicConfig(format="APP %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
elif setup == "basic":
    logging.basicConfig(
        format="APP %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout
    )

__all__ = ["app"]
