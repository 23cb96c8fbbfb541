"""`backcheck health`: asks a process's health endpoint, for container health checks (the image
has no curl). Exit 0 when it answers 200, 1 otherwise, with one line saying what it answered."""

from __future__ import annotations

from typing import Annotated

import typer

from infra.cli.common import app, console, err
from infra.terminal import markup_safe


@app.command()
def health(
    url: Annotated[
        str,
        typer.Option(help="the endpoint, e.g. http://127.0.0.1:9100/readyz"),
    ] = "http://127.0.0.1:8000/healthz",
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="seconds to wait")] = 3.0,
) -> None:
    """Ask a backcheck process's /healthz or /readyz; exit 0 if it answers 200, else 1."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r}: not an http(s) URL", param_hint="--url")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            status, body = answer.status, answer.read(2000)
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read(2000)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        err.print(f"[red]unhealthy:[/] {markup_safe(url)} does not answer ({markup_safe(reason)})")
        raise typer.Exit(1) from None
    text = body.decode(errors="replace").strip()
    if status != 200:
        err.print(f"[red]unhealthy:[/] {markup_safe(url)} answered {status}: {markup_safe(text)}")
        raise typer.Exit(1)
    console.print(markup_safe(f"{url}: {text}"))
