"""Settings from three places: the environment over the secrets directory over the TOML file,
each value's origin known, an unknown or malformed setting refused with the variable named."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from psycopg.conninfo import conninfo_to_dict

from infra.config import ConfigError, Settings
from infra.config.sources import MAX_VALUE, VARIABLES, Origin, Sources
from tests.kafka import BACKCHECK


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    config = _write(
        tmp_path / "backcheck.toml",
        'kafka_bootstrap = "file-host:9092"\n'
        "kafka_partitions = 12\n"
        'public_url = "https://file.example.com"\n',
    )
    return config, secrets


def test_the_environment_wins_over_the_secrets_which_win_over_the_file(
    places: tuple[Path, Path],
) -> None:
    config, secrets = places
    _write(secrets / "BACKCHECK_KAFKA_BOOTSTRAP", "secret-host:9092\n")
    _write(secrets / "backcheck_public_url", "https://secret.example.com")
    environ = {
        "BACKCHECK_CONFIG_FILE": str(config),
        "BACKCHECK_SECRETS_DIR": str(secrets),
        "BACKCHECK_PUBLIC_URL": "https://env.example.com",
    }
    sources = Sources.read(environ)
    settings = Settings.from_sources(sources)
    assert settings.public_url == "https://env.example.com"
    assert sources.origin("BACKCHECK_PUBLIC_URL") == Origin.ENVIRONMENT
    assert settings.kafka_bootstrap == "secret-host:9092"  # the final newline dropped
    assert sources.origin("BACKCHECK_KAFKA_BOOTSTRAP") == Origin.SECRETS
    assert settings.kafka_partitions == 12
    assert sources.origin("BACKCHECK_KAFKA_PARTITIONS") == Origin.FILE
    assert settings.max_event_bytes == 900_000
    assert sources.origin("BACKCHECK_MAX_EVENT_BYTES") == Origin.DEFAULT


def test_an_empty_environment_variable_is_unset_and_the_file_stands(
    places: tuple[Path, Path],
) -> None:
    config, _ = places
    environ = {"BACKCHECK_CONFIG_FILE": str(config), "BACKCHECK_KAFKA_BOOTSTRAP": ""}
    settings = Settings.load(environ)
    assert settings.kafka_bootstrap == "file-host:9092"


def test_a_value_from_the_file_meets_the_same_rules_as_the_environment(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", "kafka_partitions = 0\n")
    with pytest.raises(ConfigError, match=r"BACKCHECK_KAFKA_PARTITIONS: '0' is not a whole"):
        Settings.load({"BACKCHECK_CONFIG_FILE": str(config)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('databse_url = "x"\n', r"unknown setting 'databse_url'; the keys are the variables'"),
        ("kafka_bootstrap = \n", r"not TOML"),
        ("[public_url]\nhost = 'x'\n", r"BACKCHECK_PUBLIC_URL .*a dict; give a string or a"),
        ("public_url = true\n", r"BACKCHECK_PUBLIC_URL .*a bool; give a string or a number"),
        (f'oidc_jwks = "{"x" * (MAX_VALUE + 1)}"\n', rf"BACKCHECK_OIDC_JWKS .*over {MAX_VALUE}"),
    ],
)
def test_a_config_file_that_cannot_be_used_is_refused_naming_what(
    tmp_path: Path, text: str, message: str
) -> None:
    config = _write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=message):
        Sources.read({"BACKCHECK_CONFIG_FILE": str(config)})


def test_a_location_that_is_not_there_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"BACKCHECK_CONFIG_FILE: .* is not a TOML file that"):
        Sources.read({"BACKCHECK_CONFIG_FILE": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match=r"BACKCHECK_SECRETS_DIR: .* is not a directory that"):
        Sources.read({"BACKCHECK_SECRETS_DIR": str(tmp_path / "missing")})


def test_only_the_table_s_variables_are_settings() -> None:
    sources = Sources.read({"BACKCHECK_NOT_A_SETTING": "x"})
    assert "BACKCHECK_NOT_A_SETTING" not in sources.values
    with pytest.raises(KeyError, match="VARIABLES"):
        sources.get("BACKCHECK_NOT_A_SETTING")


def test_every_variable_the_configuration_reads_is_in_the_table() -> None:
    package = Path(__file__).resolve().parents[2] / "infra" / "config"
    import re

    named = {
        found
        for module in package.glob("*.py")
        for found in re.findall(r'"(BACKCHECK_[A-Z_]+[A-Z])"', module.read_text())
    }
    locations = {"BACKCHECK_CONFIG_FILE", "BACKCHECK_SECRETS_DIR"}
    assert named - locations <= set(VARIABLES), named - locations - set(VARIABLES)


def _show(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [BACKCHECK, "config", "show", *args],
        env={k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_show_prints_each_setting_its_origin_and_masks_secrets(
    tmp_path: Path, places: tuple[Path, Path]
) -> None:
    config, secrets = places
    _write(secrets / "BACKCHECK_KAFKA_SASL_PASSWORD", "hunter2-marker\n")
    _write(secrets / "BACKCHECK_KAFKA_SASL_USERNAME", "relay-user")
    env = {
        "BACKCHECK_DATA_DIR": str(tmp_path / "data"),
        "BACKCHECK_CONFIG_FILE": str(config),
        "BACKCHECK_SECRETS_DIR": str(secrets),
        "BACKCHECK_DATABASE_URL": "postgresql://bc:db-pass-marker@db.example:5432/bc",
        "BACKCHECK_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "BACKCHECK_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    }
    shown = _show(env, "--json")
    assert shown.returncode == 0, shown.stderr
    assert "marker" not in shown.stdout
    document = orjson.loads(shown.stdout)
    settings = document["settings"]
    assert set(settings) == set(VARIABLES)
    assert settings["BACKCHECK_DATABASE_URL"] == {
        "value": "postgresql://bc:****@db.example:5432/bc",
        "from": "environment",
    }
    assert settings["BACKCHECK_KAFKA_SASL_PASSWORD"] == {"value": "****", "from": "secrets"}
    assert settings["BACKCHECK_KAFKA_SASL_USERNAME"] == {"value": "****", "from": "secrets"}
    assert settings["BACKCHECK_KAFKA_PARTITIONS"] == {"value": "12", "from": "file"}
    assert settings["BACKCHECK_MAX_EVENT_BYTES"] == {"value": "900000", "from": "default"}
    assert document["derived"]["kafka"] == (
        "file-host:9092 (SASL_PLAINTEXT, SCRAM-SHA-512 as relay-user)"
    )
    # what the unset origin and scheduler id stand for (they showed "(none)" alone)
    assert settings["BACKCHECK_LOG_ORIGIN"]["from"] == "default"
    expected = Settings(database_url="postgresql://bc:x@db.example:5432/bc").origin
    assert document["derived"]["log origin"] == expected
    assert document["derived"]["log origin"].startswith("backcheck/")
    assert document["derived"]["scheduler id"] == "this host's name and each process's id"
    table = _show(env)
    assert table.returncode == 0, table.stderr
    assert "marker" not in table.stdout
    assert "BACKCHECK_KAFKA_PARTITIONS" in table.stdout
    assert "postgresql://bc:****@db.example:5432/bc" in table.stdout


def test_config_show_refuses_a_bad_setting_in_one_line_with_exit_78(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", 'kafka_sasl_username = "x"\n')
    shown = _show({"BACKCHECK_CONFIG_FILE": str(config)})
    assert shown.returncode == 78
    assert shown.stderr.strip().splitlines() == [
        "Configuration error (config): BACKCHECK_KAFKA_SASL_USERNAME: set, but "
        "BACKCHECK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT, which does not use it; choose a "
        "protocol that does (SASL_PLAINTEXT or SASL_SSL), or unset it"
    ]


def test_the_portal_session_bounds_are_durations_within_a_minute_and_30_days() -> None:
    default = Settings.from_sources(Sources.read({}))
    chosen = Settings.from_sources(
        Sources.read(
            {"BACKCHECK_PORTAL_SESSION_IDLE": "10m", "BACKCHECK_PORTAL_SESSION_LIMIT": "2h"}
        )
    )

    assert (default.portal_session_idle, default.portal_session_limit) == (1800, 8 * 3600)
    assert (chosen.portal_session_idle, chosen.portal_session_limit) == (600, 7200)
    for variable, text, said in [
        ("BACKCHECK_PORTAL_SESSION_IDLE", "30s", "'30s' is outside 1m to 30d"),
        ("BACKCHECK_PORTAL_SESSION_LIMIT", "forever", "'forever' is not N<unit>"),
    ]:
        with pytest.raises(ConfigError, match=f"^{variable}: {said}"):
            Settings.from_sources(Sources.read({variable: text}))


def test_a_password_with_a_quote_or_a_backslash_reaches_libpq_as_written() -> None:
    """The connection string quoted each value in '…' without escaping it: a password with a
    quote in it ended the value early (a malformed string, or another parameter)."""
    password = "it's\\a' sslmode='disable"
    url = f"postgresql://app:{quote(password, safe='')}@db:5432/hr?schema=hr&sslmode=verify-full"

    parsed = conninfo_to_dict(Settings(database_url=url).postgres_conninfo())

    assert parsed["password"] == password
    assert parsed["sslmode"] == "verify-full"
    assert parsed["connect_timeout"] == "5"
    assert (parsed["host"], parsed["dbname"], parsed["user"]) == ("db", "hr", "app")
