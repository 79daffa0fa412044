"""An app whose import leaves a visible mark, to prove when the runtime imports the app."""

print("IMPORTED import_marker_app", flush=True)


def app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
