"""docker-compose.yml cannot run here (no Docker engine); keep it consistent with the code:
every setting it passes is one the configuration reads, every command it runs exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.main import get_command

import infra.config
from infra.cli import app

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, object]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_backcheck_setting_in_compose_is_read_by_the_configuration() -> None:
    read = set(re.findall(r"BACKCHECK_[A-Z_]+", Path(infra.config.__file__).read_text()))
    services = compose()["services"]
    passed = {
        key
        for service in services.values()  # type: ignore[union-attr]
        for key in (service.get("environment") or {})
        if key.startswith("BACKCHECK_")
    }
    assert passed  # the file does configure backcheck
    assert passed <= read, passed - read


def test_every_backcheck_command_in_compose_exists() -> None:
    cli = get_command(app)
    services = compose()["services"]
    commands = [
        ["backcheck", *words.split()]
        for service in services.values()  # type: ignore[union-attr]
        for words in re.findall(r"\bbackcheck((?: [a-z][a-z-]*)+)", str(service.get("command")))
    ]
    assert commands
    for words in commands:
        group = cli
        for word in words[1:]:
            if word.startswith("-"):
                break
            sub = getattr(group, "commands", {}).get(word)
            assert sub is not None, f"`{' '.join(words)}`: no command {word!r}"
            group = sub
