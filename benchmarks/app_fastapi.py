"""The FastAPI app of the real-app rows: a pydantic model for the body and the answer, a query
with a typed parameter, and a dependency that reads a cookie, as a small FastAPI service has.

    POST /greet?q=fast+apps&page=2   body {"name": "scf", "tags": ["a", "b"], "count": 3}
                                     cookie user=alice
    -> 200 {"hello": "scf", "tags": ["a", "b"], "count": 3, "q": "fast apps", "page": 2,
            "user": "alice"}, with two Set-Cookie headers

The same request and answer as app_flask.py and app_django.py (see events.REAL_ANSWER).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Cookie, Depends, FastAPI, Response
from pydantic import BaseModel


class Greeting(BaseModel):
    name: str
    tags: list[str] = []
    count: int = 1


class Reply(BaseModel):
    hello: str
    tags: list[str]
    count: int
    q: str
    page: int
    user: str


async def current_user(user: Annotated[str, Cookie()] = "") -> str:
    return user


app = FastAPI()


@app.post("/greet", response_model=Reply)
async def greet(
    greeting: Greeting,
    response: Response,
    q: str,
    user: Annotated[str, Depends(current_user)],
    page: int = 1,
) -> Reply:
    response.set_cookie("session", "s3cr3t", path="/", httponly=True)
    response.set_cookie("theme", "dark", path="/", samesite="lax")
    return Reply(
        hello=greeting.name, tags=greeting.tags, count=greeting.count, q=q, page=page, user=user
    )
