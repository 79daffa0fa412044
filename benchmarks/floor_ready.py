"""The floor of the cold-start row: import what any runtime client needs, import the app, post
ready, then wait for an event like a runtime would.

    python -m floor_ready MODULE:APP     (SCF_RUNTIME_API / SCF_RUNTIME_API_PORT set)
"""

import asyncio  # noqa: F401 - imported to pay for it, as an ASGI runtime must
import http.client
import importlib
import json
import os
import sys

module_name, _, attr = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module_name), attr)
connection = http.client.HTTPConnection(
    os.environ["SCF_RUNTIME_API"], int(os.environ["SCF_RUNTIME_API_PORT"])
)
connection.request("POST", "/runtime/init/ready", json.dumps({"msg": "ready"}).encode())
connection.getresponse().read()
connection.request("GET", "/runtime/invocation/next")
connection.getresponse().read()
