"""What every framework app serves, so the tests can ask all of them the same questions.

    GET  /items/{id:int}   {"id": id}; HEAD too, and a CORS preflight (OPTIONS) answered
    GET  /query            {"q": [every value of the repeated key q]}
    POST /json             {"received": the JSON body}
    POST /form             {"name": ..., "note": ...} from an urlencoded form
    POST /upload           the bytes of the multipart field "file", header X-Upload-Name
    GET  /cookies          {"session": cookie "session"}, and sets cookies a=1 and b=2
    GET  /redirect         302 to the absolute public URL of /items/7, built by the framework
    GET  /static/blob.bin  a binary file served by the framework's static files support
    GET  /stream           "one,two,three", streamed in three chunks
    GET  /boom             raises RuntimeError(SECRET)
    GET  /lifespan         {"started": true} once the framework's startup hook ran (ASGI)

On shutdown the ASGI apps print `shutdown_line(name)`, which the end-to-end tests look for.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
STREAM_PARTS = (b"one,", b"two,", b"three")
CORS_ORIGIN = "https://app.example.com"
CORS_METHODS = "GET, POST, OPTIONS"
SECRET = "secret detail that must not leak"


def shutdown_line(framework: str) -> str:
    return f"SHUTDOWN HOOK RAN: {framework}"


def announce_shutdown(framework: str) -> None:
    print(shutdown_line(framework), flush=True)


def cors_headers(origin: str | None) -> dict[str, str]:
    """The CORS answer of the apps whose framework has no CORS support of its own."""
    if origin != CORS_ORIGIN:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }
