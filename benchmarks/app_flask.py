"""The Flask app of the real-app rows: the route in a blueprint, a before_request hook that reads
the user's cookie into `g`, the JSON body parsed by Flask (the same request and answer as
app_fastapi.py: see events.REAL_ANSWER)."""

from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from flask import Response

api = Blueprint("api", __name__)


@api.before_request
def load_user() -> None:
    g.user = request.cookies.get("user", "")


@api.post("/greet")
def greet() -> Response:
    data = request.get_json()
    response = jsonify(
        hello=data["name"],
        tags=data.get("tags", []),
        count=data.get("count", 1),
        q=request.args["q"],
        page=request.args.get("page", 1, type=int),
        user=g.user,
    )
    response.set_cookie("session", "s3cr3t", path="/", httponly=True)
    response.set_cookie("theme", "dark", path="/", samesite="Lax")
    return response


def create_app() -> Flask:
    app = Flask(__name__)
    app.register_blueprint(api)
    return app


app = create_app()
