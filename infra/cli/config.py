"""`backcheck config show`: the effective settings, where each came from, secrets masked.

Every setting in infra/config/sources.py's table is listed, given or not, so an operator sees
what a process will use before starting it: the value (a password replaced by ****, a URL's
password alone), and its origin (environment, secrets, file, default). Then what follows from
them: the store, the key files, how Kafka is reached. The same checks run as on any start, so a
setting that would stop a process stops this command too, with the same one line and exit 78.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import app, console, fail

if TYPE_CHECKING:
    from infra.config import Settings, Sources

config_app = typer.Typer(help="The configuration: what is in force, and where it came from.")
app.add_typer(config_app, name="config")

MASK = "****"


@config_app.command("show")
def show(
    as_json: Annotated[
        bool, typer.Option("--json", help="the settings as one JSON object")
    ] = False,
) -> None:
    """Print the effective settings (environment over secrets directory over config file over
    defaults), where each came from, with secrets masked; then the store, keys and Kafka they
    lead to. Exit 78 with one line when a setting is refused."""
    from infra.config import Settings, Sources

    try:
        sources = Sources.read()
        settings = Settings.from_sources(sources)
        derived = {
            "store": settings.location(),
            "kafka": f"{settings.kafka_bootstrap} ({settings.kafka_security.describe()})",
            # what an unset BACKCHECK_LOG_ORIGIN and BACKCHECK_SCHEDULER_ID stand for
            "log origin": settings.origin,
            "scheduler id": settings.scheduler_id or "this host's name and each process's id",
        }
    except Exception as e:
        fail(e, as_json)
    rows = [(variable, *_shown(sources, settings, variable)) for variable in _variables()]
    if as_json:
        document = {
            "config_file": str(sources.config_file) if sources.config_file else None,
            "secrets_dir": str(sources.secrets_dir) if sources.secrets_dir else None,
            "settings": {v: {"value": value, "from": origin} for v, value, origin in rows},
            "derived": derived,
        }
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
        return
    table = Table("setting", "value", "from", title="Settings", title_justify="left")
    for variable, value, origin in rows:
        style = "dim" if origin == "default" else None
        table.add_row(variable, Text(value or "(none)", style=style or ""), origin)
    console.print(table)
    places = Table("", "", title="What they lead to", title_justify="left", show_header=False)
    places.add_row("config file", str(sources.config_file or "(none: BACKCHECK_CONFIG_FILE)"))
    places.add_row("secrets directory", str(sources.secrets_dir or "(none: BACKCHECK_SECRETS_DIR)"))
    for name, value in derived.items():
        places.add_row(name, value)
    console.print(places)


def _variables() -> list[str]:
    from infra.config.sources import VARIABLES

    return list(VARIABLES)


def _defaults(settings: Settings) -> dict[str, str]:
    """What an unset setting stands at, where it has a value."""
    from domain.retention import RetentionSchedule
    from infra.config import SCHEDULES

    return {
        "BACKCHECK_DATABASE_URL": f"sqlite:///{settings.sqlite_path}",
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
        "BACKCHECK_SIGNING_KEY": str(settings.signing_key_path),
        "BACKCHECK_VERIFY_KEY": str(settings.verify_key_path),
        "BACKCHECK_MASTER_KEY_FILE": str(settings.master_key_path),
        "BACKCHECK_KEY_PROVIDER": settings.key_provider,
        "BACKCHECK_PKCS11_KEY_LABEL": settings.pkcs11_key_label,
        "BACKCHECK_RETENTION_DAYS": ",".join(
            f"{tier}={days}" for tier, days in RetentionSchedule().days.items()
        ),
        "BACKCHECK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "BACKCHECK_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "BACKCHECK_KAFKA_SECURITY_PROTOCOL": settings.kafka_security.protocol.value,
        "BACKCHECK_MAX_EVENT_BYTES": str(settings.max_event_bytes),
        "BACKCHECK_PUBLIC_URL": settings.public_url,
        "BACKCHECK_HEALTH_HOST": settings.health_host,
        "BACKCHECK_OIDC_ROLE_CLAIM": settings.oidc_role_claim,
        "BACKCHECK_OIDC_PRINCIPAL_CLAIM": settings.oidc_principal_claim,
        "BACKCHECK_SCHEDULE_LEASE": f"{settings.schedule_lease}s",
        "BACKCHECK_PORTAL_SESSION_IDLE": f"{settings.portal_session_idle}s",
        "BACKCHECK_PORTAL_SESSION_LIMIT": f"{settings.portal_session_limit}s",
    } | {variable: default for variable, default in SCHEDULES.values()}


def _shown(sources: Sources, settings: Settings, variable: str) -> tuple[str | None, str]:
    """A setting's text as it may be shown, and where it came from: an unset one's default."""
    from infra.config.sources import VARIABLES, Origin

    text, origin = sources.get(variable), sources.origin(variable)
    if text is None:
        return _defaults(settings).get(variable), origin.value
    if variable == "BACKCHECK_DATABASE_URL":
        return masked_url(text), origin.value
    if VARIABLES[variable].secret or origin == Origin.SECRETS:
        return MASK, origin.value
    return text, origin.value


def masked_url(url: str) -> str:
    """A URL with its password, if any, replaced by ****."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
