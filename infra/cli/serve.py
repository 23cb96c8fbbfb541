"""`backcheck serve`: the HTTP API on the configured store."""

from __future__ import annotations

import signal
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from infra.cli.common import app, console, fail, open_app
from infra.http.errors import PortUnavailableError
from infra.http.link import portal_link
from infra.terminal import markup_safe

if TYPE_CHECKING:
    from infra.config import Settings
    from services.application import Backcheck


def _stopped(signum: int, frame: object) -> None:
    """Asked to stop once the server has stopped: nothing left to do."""


def _seeded(application: Backcheck, settings: Settings) -> dict[str, str]:
    """The demo story on the store (one demo at a time), the checkpoint key pair evidence
    bundles are signed with, and tokens to look at it with. The story runs silently (its
    steps would push the URLs off the screen): one line says what it left in the store."""
    from infra.audit.trail import key_pair
    from infra.cli.demo import lock_path
    from infra.demo import tell_story
    from infra.demo.access import demo_tokens
    from infra.store.filelock import running_alone

    if settings.signing_key is None:
        key_pair(settings.signing_key_path.parent)
    with running_alone(lock_path(settings), "demo"):
        told = tell_story(application)
    console.print(
        f"demo story run on the store: {told.steps} steps, {len(told.refusals)} of them "
        "refused by the rules, as the story means them to be (`backcheck demo` tells it "
        "step by step)"
    )
    return demo_tokens(application, told.consent.candidate_id)


WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # every address: none of them a link's


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on connections whose socket
    # says TCP, and without it every small answer waits ~40 ms on the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait from now on, while the story is told
    except OSError as e:
        sock.close()
        raise PortUnavailableError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    return sock


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="the port (0: any free one)")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="first run the demo story, so there is data to see")
    ] = False,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=1024, max=64 * 1024 * 1024, help="the largest request body (default: 1 MiB)"
        ),
    ] = None,
) -> None:
    """Serve the HTTP API on the configured store until stopped (Ctrl-C or SIGTERM)."""
    import uvicorn

    from infra.http.app import create_app
    from infra.http.auth import Authenticator
    from infra.http.bodies import DEFAULT_MAX_BODY
    from infra.http.idempotency import kept_answers
    from infra.http.oidc import oidc_verifier
    from infra.http.sessions import portal_sessions
    from infra.http.wire import JoinedHttpTools
    from infra.ops import logs

    tokens: dict[str, str] = {}
    try:
        sock = _bound(host, port)
        served = f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}"
        # links sent with consent requests open this server, unless it listens on every
        # address (no one address to give) or BACKCHECK_PUBLIC_URL names the public one
        application, settings = open_app(serving=None if host in WILDCARDS else served)
        oidc = oidc_verifier(settings)
        if demo:
            tokens = _seeded(application, settings)
        sqlite = settings.sqlite_path if settings.backend == "sqlite" else None
        kept = kept_answers(
            settings.backend,
            sqlite,
            settings.postgres_conninfo() if sqlite is None else "",
            settings.postgres_schema if sqlite is None else "",
        )
        sessions = portal_sessions(settings)
    except Exception as e:
        fail(e)
    base = served
    console.print(f"[dim]store: {markup_safe(settings.describe())}[/]")
    console.print(f"backcheck serving on {base}")
    # /v1 itself is no resource: the document lists every route under it
    console.print(f"  API        {base}/openapi.json  lists every /v1 route, e.g. {base}/v1/me")
    if oidc is not None:
        console.print(f"  OIDC: {markup_safe(oidc.describe())}")
    console.print(f"  dashboard  {base}/dashboard  (sign in with a staff token)")
    console.print(f"  portal     {base}/portal  (a candidate opens it from their link)")
    console.print(f"  health     {base}/healthz  {base}/readyz  {base}/metrics")
    if settings.public_url != base:  # the links sent with consent requests open that one
        console.print(
            f"  [dim]portal links sent with consent requests open "
            f"{markup_safe(settings.public_url)}/portal (BACKCHECK_PUBLIC_URL)[/]"
        )
    for name, token in tokens.items():
        console.print(f"  token of {markup_safe(name)}: {token}")
        if name.startswith("candidate:"):
            link = portal_link(base, token)
            console.print(f"  portal link of {markup_safe(name)}: {link}")
    if tokens:
        console.print(
            "  [dim](each shown this once; send it as `Authorization: Bearer <token>`)[/]"
        )
    http = create_app(
        application,
        Authenticator(application, sessions, oidc=oidc),
        kept,
        settings=settings,
        max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY,
    )
    logs.configure()  # JSON lines off a terminal (infra/ops/logs.py), uvicorn's included
    server = uvicorn.Server(
        uvicorn.Config(
            http,
            http=JoinedHttpTools,
            loop="uvloop",
            log_level="warning",
            access_log=False,
            log_config=None,
            # a connection still busy this long after SIGTERM is cut (the dashboard's streams
            # end themselves within a poll: infra/http/dashboard.py)
            timeout_graceful_shutdown=10,
        )
    )
    http.state.server = server
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handler it found: with this one, that ends the command normally (exit 0)
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    try:
        server.run(sockets=[sock])
    finally:
        http.state.workers.close()
        kept.close()
        sessions.close()
