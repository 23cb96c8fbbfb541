"""The table's reads found from the ASGI scope, ahead of FastAPI's router: the same route the
router would choose, or none (the request goes on to FastAPI)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from infra.http.auth import Unanswerable, Unauthenticated
from infra.http.read_path import ReadPaths, could_answer, shape
from infra.store.server import StoreUnreachableError


def _read(said: str) -> Any:
    """An endpoint the router would serve with "router", carrying a read handler (as the
    Api's read endpoints do) that answers `said` with the ids it was given."""

    async def endpoint(request: Request) -> Response:
        return Response(b"router")

    async def read(request: Request, ids: dict[str, str]) -> Response:
        if ids.get("candidate_id") == "nobody":
            raise Unauthenticated("no credential", False)
        if ids.get("candidate_id") == "down":
            raise Unanswerable(StoreUnreachableError("the store is away"))
        found = ",".join(f"{k}={v}" for k, v in ids.items())
        return Response(f"{said}:{found}?{request.url.query}".encode())

    endpoint.read = read  # type: ignore[attr-defined]
    return endpoint


def _served(app: FastAPI) -> TestClient:
    app.add_middleware(ReadPaths, routes=app.router.routes)
    return TestClient(app)


def test_a_read_is_answered_by_its_handler_with_the_paths_ids_as_they_came() -> None:
    app = FastAPI()
    app.add_api_route("/v1/candidates/{candidate_id}/profile", _read("profile"), methods=["GET"])
    app.add_api_route("/v1/reports/{report_id}", _read("report"), methods=["GET"])
    client = _served(app)

    profile = client.get("/v1/candidates/c-1/profile?purpose=hiring")
    report = client.get("/v1/reports/not-a-uuid")

    assert profile.text == "profile:candidate_id=c-1?purpose=hiring"
    assert report.text == "report:report_id=not-a-uuid?"  # its DTO names a bad id, not this


def test_what_is_not_a_read_goes_on_to_fastapi() -> None:
    app = FastAPI()
    app.add_api_route("/v1/candidates/{candidate_id}/profile", _read("profile"), methods=["GET"])
    client = _served(app)

    slash = client.get("/v1/candidates/c-1/profile/", follow_redirects=False)
    assert slash.status_code == 307  # the router's redirect
    assert client.get("/v1/candidates//profile").status_code == 404
    assert client.get("/v1/candidates/c-1/consents").status_code == 404
    assert client.post("/v1/candidates/c-1/profile").status_code == 405
    assert client.head("/v1/candidates/c-1/profile").status_code == 405


def test_a_read_an_earlier_route_could_answer_is_left_to_the_router() -> None:
    app = FastAPI()

    def earlier() -> dict[str, str]:
        return {"by": "earlier"}

    app.add_api_route("/v1/candidates/search/profile", earlier, methods=["GET"])
    app.add_api_route("/v1/candidates/{candidate_id}/profile", _read("profile"), methods=["GET"])
    app.add_api_route("/v1/reports/{report_id}", _read("report"), methods=["GET"])
    client = _served(app)

    assert client.get("/v1/candidates/search/profile").json() == {"by": "earlier"}
    assert client.get("/v1/candidates/c-1/profile").text == "router"  # not served ahead
    assert client.get("/v1/reports/r-1").text == "report:report_id=r-1?"


def test_a_caller_not_identified_is_told_401_and_one_unchecked_503() -> None:
    app = FastAPI()
    app.add_api_route("/v1/candidates/{candidate_id}/profile", _read("profile"), methods=["GET"])
    client = _served(app)

    nobody = client.get("/v1/candidates/nobody/profile")
    down = client.get("/v1/candidates/down/profile")

    assert nobody.status_code == 401
    assert nobody.headers["WWW-Authenticate"] == 'Bearer realm="backcheck"'
    assert nobody.json()["instance"] == "/v1/candidates/nobody/profile"
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"


def test_which_routes_could_answer_a_reads_paths() -> None:
    app = FastAPI()

    def endpoint() -> None:
        """(only its route is looked at)"""

    app.add_api_route("/v1/candidates/{x}/profile", endpoint, methods=["GET"])
    app.add_api_route("/v1/candidates/{x}/profile", endpoint, methods=["POST"])
    app.add_api_route("/v1/candidates/me/profile", endpoint, methods=["GET"])
    app.add_api_route("/v1/candidates/{x}", endpoint, methods=["GET"])
    app.add_api_route("/v1/files/{rest:path}", endpoint, methods=["GET"])
    same, posted, word, shorter, spanning = app.router.routes[-5:]
    read = shape("/v1/candidates/{candidate_id}/profile")

    assert read == ("v1", "candidates", None, "profile")
    assert could_answer(same, read)
    assert not could_answer(posted, read)
    assert could_answer(word, read)
    assert not could_answer(shorter, read)
    assert could_answer(spanning, read)
