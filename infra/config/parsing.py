"""How each setting's text is read: the rules, and errors that name the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from services.access import Role

POSTGRES_CONNECT_TIMEOUT = 5  # seconds libpq may take to reach each address of the host
# The store's environment entry that carries the URL's libpq parameters to the event store's
# pool (infra/store/pg_pool.py `Factory`), as a connection string.
LIBPQ_SETTING = "POSTGRES_LIBPQ_PARAMETERS"
# An event's stored state is the value of its Kafka message. Kafka's default limit for one
# message (message.max.bytes, max.message.bytes) is 1 MiB; the key, the CloudEvents headers and
# the record's framing take well under 1 KiB of the rest.
MAX_EVENT_BYTES = 900_000
MIN_EVENT_BYTES = 1024
MAX_OIDC_SETTING = 2048  # an issuer URL, an audience, a claim name
PUBLIC_URL = "http://127.0.0.1:8000"  # where `backcheck serve` listens unless told otherwise
MAX_PUBLIC_URL = 2048
MAX_ROLE_MAP_ENTRIES = 100
# The roles an OIDC token may carry: staff. Candidates sign in with their portal link,
# services with an API token or signed messages.
OIDC_STAFF_ROLES = frozenset(
    {Role.RECRUITER, Role.INVESTIGATOR, Role.REVIEWER, Role.HIRING_MANAGER, Role.COMPLIANCE}
)


class ConfigError(ValueError):
    """A setting is present but cannot be used; the message names the variable and the rule."""


MAX_RETENTION_RULES = 100  # more than there are tiers and categories


def parse_retention(
    text: str,
    variable: str = "BACKCHECK_RETENTION_DAYS",
    form: str = "TIER=DAYS (e.g. secret=180,confidential=365,general=730)",
) -> dict[str, int]:
    days: dict[str, int] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_RETENTION_RULES:
        raise ConfigError(f"{variable}: over {MAX_RETENTION_RULES} entries")
    for part in parts:
        name, sep, number = part.partition("=")
        if not sep or not number.strip().isdigit() or len(number.strip()) > 6:
            raise ConfigError(f"{variable}: {part[:100]!r} is not {form}")
        name = name.strip()
        if name in days:  # which of the two would count is nowhere written: neither does
            raise ConfigError(
                f"{variable}: {name[:100]!r} is given twice ({days[name]} and {int(number)} "
                "days); give each once"
            )
        days[name] = int(number)
    return days


def parse_retention_categories(text: str) -> dict[str, int]:
    """CATEGORY=DAYS[,CATEGORY=DAYS]: a category's own period, in place of its tier's."""
    return parse_retention(
        text,
        "BACKCHECK_RETENTION_CATEGORIES",
        "CATEGORY=DAYS (e.g. user.reference.contact=365,user.education=1095)",
    )


def parse_bootstrap(text: str) -> str:
    """host:port[,host:port]: each server with a host and a numeric port."""
    servers = [part.strip() for part in text.split(",") if part.strip()]
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(
                f"BACKCHECK_KAFKA_BOOTSTRAP: {server!r} is not HOST:PORT "
                "(e.g. 127.0.0.1:9092 or kafka-1:9092,kafka-2:9092)"
            )
    if not servers:
        raise ConfigError("BACKCHECK_KAFKA_BOOTSTRAP: empty; give HOST:PORT[,HOST:PORT]")
    return ",".join(servers)


def parse_role_map(text: str) -> dict[str, Role]:
    """GROUP=ROLE[,GROUP=ROLE]: each of the provider's role or group names to one backcheck
    staff role (a name may hold "=": the role is after the last one)."""
    variable = "BACKCHECK_OIDC_ROLE_MAP"
    staff = ", ".join(sorted(OIDC_STAFF_ROLES))
    mapping: dict[str, Role] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_ROLE_MAP_ENTRIES:
        raise ConfigError(f"{variable}: over {MAX_ROLE_MAP_ENTRIES} entries")
    for part in parts:
        group, sep, role = part.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or len(group) > 256:
            raise ConfigError(
                f"{variable}: {part[:300]!r} is not GROUP=ROLE "
                "(e.g. hr-staff=recruiter,auditors=compliance)"
            )
        if role not in OIDC_STAFF_ROLES:
            raise ConfigError(
                f"{variable}: {role[:64]!r} (for {group!r}) is not a backcheck staff role; use "
                f"one of {staff} (candidates sign in with their portal link, services with an "
                "API token)"
            )
        if mapping.get(group, Role(role)) != role:
            raise ConfigError(f"{variable}: {group!r} is mapped to two roles")
        mapping[group] = Role(role)
    if not mapping:
        raise ConfigError(f"{variable}: empty; map at least one group, e.g. hr-staff=recruiter")
    return mapping


def _oidc_text(get: Callable[[str], str | None], variable: str) -> str | None:
    text = (get(variable) or "").strip()
    if not text:
        return None
    if len(text) > MAX_OIDC_SETTING or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ConfigError(
            f"{variable}: over {MAX_OIDC_SETTING} characters or holds control characters"
        )
    return text


def oidc_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    """The BACKCHECK_OIDC_* settings (`get` gives a variable's text): all or nothing around the
    issuer."""
    names = (
        *("ISSUER", "AUDIENCE", "JWKS", "ROLE_MAP"),
        *("ROLE_CLAIM", "PRINCIPAL_CLAIM", "ASSIGNMENTS_CLAIM"),
    )
    given = {name: _oidc_text(get, f"BACKCHECK_OIDC_{name}") for name in names}
    if given["ISSUER"] is None:
        stray = [f"BACKCHECK_OIDC_{n}" for n, v in given.items() if v is not None]
        if stray:
            raise ConfigError(
                f"{', '.join(stray)}: set, but BACKCHECK_OIDC_ISSUER is not; set the issuer "
                "too, or unset these"
            )
        return {}
    missing = [f"BACKCHECK_OIDC_{n}" for n in ("AUDIENCE", "JWKS", "ROLE_MAP") if not given[n]]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)}: required with BACKCHECK_OIDC_ISSUER (the audience tokens "
            "name, where the issuer's keys are, and which of its roles are which staff role)"
        )
    values: dict[str, object] = {
        "oidc_issuer": given["ISSUER"],
        "oidc_audience": given["AUDIENCE"],
        "oidc_jwks": given["JWKS"],
        "oidc_role_map": parse_role_map(given["ROLE_MAP"] or ""),
    }
    for name in ("ROLE_CLAIM", "PRINCIPAL_CLAIM", "ASSIGNMENTS_CLAIM"):
        if (claim := given[name]) is not None:
            if len(claim) > 256:
                raise ConfigError(f"BACKCHECK_OIDC_{name}: a claim name of over 256 characters")
            values[f"oidc_{name.lower()}"] = claim
    return values


# --- scheduled duties (`backcheck scheduler`, services/schedule.py) --------------------------
SCHEDULES = {  # duty -> (variable, default)
    "retention": ("BACKCHECK_SCHEDULE_RETENTION", "every 1d"),
    "consent-expiry": ("BACKCHECK_SCHEDULE_CONSENT_EXPIRY", "every 1h"),
    "checkpoint": ("BACKCHECK_SCHEDULE_CHECKPOINT", "every 1h"),
}
DEFAULT_LEASE = 3600
MAX_SCHEDULER_ID = 200


def default_schedules() -> dict[str, int]:
    """Each duty's default schedule (`SCHEDULES`), in seconds."""
    from services.schedule import parse_every

    chosen = {duty: parse_every(default) for duty, (_, default) in SCHEDULES.items()}
    return {duty: every.seconds for duty, every in chosen.items() if every is not None}


def schedule_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    """The BACKCHECK_SCHEDULE_* settings and BACKCHECK_SCHEDULER_ID (`get` gives a variable's
    text), checked (ConfigError naming the variable and the rule)."""
    from services.schedule import (
        MAX_LEASE,
        MIN_LEASE,
        ScheduleFormatError,
        parse_duration,
        parse_every,
    )

    every: dict[str, int] = {}
    values: dict[str, object] = {"schedules": every}
    try:
        for duty, (variable, default) in SCHEDULES.items():
            chosen = parse_every((get(variable) or "").strip() or default)
            if chosen is not None:
                every[duty] = chosen.seconds
        variable = "BACKCHECK_SCHEDULE_LEASE"
        if text := (get(variable) or "").strip():
            rule = "N<unit>, unit s, m, h or d (e.g. 1h)"
            values["schedule_lease"] = parse_duration(text, MIN_LEASE, MAX_LEASE, rule)
    except ScheduleFormatError as e:
        raise ConfigError(f"{variable}: {e}") from None
    if runner := (get("BACKCHECK_SCHEDULER_ID") or "").strip():
        if len(runner) > MAX_SCHEDULER_ID or any(ord(c) < 32 or ord(c) == 127 for c in runner):
            raise ConfigError(
                f"BACKCHECK_SCHEDULER_ID: over {MAX_SCHEDULER_ID} characters or holds control "
                "characters"
            )
        values["scheduler_id"] = runner
    return values


# --- the candidate portal's sessions (infra/http/sessions.py) --------------------------------
PORTAL_SESSION = {  # setting -> (variable, default in seconds)
    "portal_session_idle": ("BACKCHECK_PORTAL_SESSION_IDLE", 1800),
    "portal_session_limit": ("BACKCHECK_PORTAL_SESSION_LIMIT", 8 * 3600),
}
MIN_PORTAL_SESSION, MAX_PORTAL_SESSION = 60, 30 * 86400


def portal_session_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    """How long a portal session may go unused, and how long it may last however used:
    `N<unit>` (s, m, h or d), 1m to 30d (ConfigError naming the variable otherwise)."""
    from services.schedule import ScheduleFormatError, parse_duration

    values: dict[str, object] = {}
    for setting, (variable, _) in PORTAL_SESSION.items():
        if text := (get(variable) or "").strip():
            rule = "N<unit>, unit s, m, h or d (e.g. 30m)"
            try:
                values[setting] = parse_duration(text, MIN_PORTAL_SESSION, MAX_PORTAL_SESSION, rule)
            except ScheduleFormatError as e:
                raise ConfigError(f"{variable}: {e}") from None
    return values


def parse_public_url(text: str) -> str:
    """scheme://host[:port] with scheme http or https, and nothing after it: the portal is
    served at /portal of the server's root (a trailing / is dropped)."""
    variable = "BACKCHECK_PUBLIC_URL"
    text = text.strip()
    if len(text) > MAX_PUBLIC_URL or any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise ConfigError(
            f"{variable}: over {MAX_PUBLIC_URL} characters, or holds spaces or control characters"
        )
    url = urlsplit(text)
    try:
        _ = url.port  # a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"{variable}: {text[:300]!r} has a port that is not a number") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(
            f"{variable}: {text[:300]!r} is not http(s)://HOST[:PORT] "
            "(e.g. https://backcheck.example.com)"
        )
    if url.path not in ("", "/") or url.query or url.fragment or url.username is not None:
        raise ConfigError(
            f"{variable}: {text[:300]!r} holds more than scheme://HOST[:PORT]; the portal is "
            "served at /portal of the server's root"
        )
    return f"{url.scheme}://{url.netloc}"


def file_setting(variable: str, path: Path, what: str) -> Path:
    """A setting that names a file to be read or made: refused (ConfigError, naming the
    variable) when it names a directory, or when a file stands where its directory must be."""
    if path.is_dir():
        raise ConfigError(f"{variable}: {path} is a directory; name the {what} file")
    directory_setting(variable, path.parent, what)
    return path


def directory_setting(variable: str, directory: Path, what: str) -> Path:
    """A directory a setting names, made if missing: refused (ConfigError, naming the
    variable) when a file stands in its way or no directory can be made there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"{variable}: cannot make the directory {directory} for the {what}: a file is in "
            "the way"
        ) from None
    except OSError as e:
        raise ConfigError(
            f"{variable}: cannot make the directory {directory} for the {what}: {e.strerror or e}"
        ) from None
    return directory


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "backcheck"


def key_provider_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    """BACKCHECK_KEY_PROVIDER and the BACKCHECK_PKCS11_* settings; whether the PKCS#11 ones
    are all there is asked when the provider is opened (infra/privacy/pkcs11.py)."""
    values: dict[str, object] = {}
    if (provider := get("BACKCHECK_KEY_PROVIDER")) is not None:
        provider = provider.strip().lower()
        if provider not in ("file", "pkcs11"):
            raise ConfigError(
                f"BACKCHECK_KEY_PROVIDER: {provider[:40]!r} is not a key provider; use file "
                "(the key file, default) or pkcs11 (a token through its PKCS#11 module)"
            )
        values["key_provider"] = provider
    if module := get("BACKCHECK_PKCS11_MODULE"):
        values["pkcs11_module"] = Path(module.strip()).expanduser()
    for name in ("TOKEN_LABEL", "KEY_LABEL"):
        if (label := get(f"BACKCHECK_PKCS11_{name}")) is not None:
            label = label.strip()
            if not label or len(label) > 32 or any(ord(c) < 32 for c in label):
                raise ConfigError(
                    f"BACKCHECK_PKCS11_{name}: 1 to 32 characters, no control characters"
                )
            values[f"pkcs11_{name.lower()}"] = label
    if (pin := get("BACKCHECK_PKCS11_PIN")) is not None:
        if len(pin) > 256:
            raise ConfigError("BACKCHECK_PKCS11_PIN: over 256 characters")
        values["pkcs11_pin"] = pin.rstrip("\n")
    return values


MAX_ORIGIN = 256


def parse_origin(text: str) -> str:
    """A log origin (c2sp.org/tlog-checkpoint), also its key's name in signed notes: 1 to 256
    printable characters, no whitespace, no "+"."""
    text = text.strip()
    if (
        not 0 < len(text) <= MAX_ORIGIN
        or "+" in text
        or any(c.isspace() or not c.isprintable() for c in text)
    ):
        raise ConfigError(
            f"BACKCHECK_LOG_ORIGIN: {text[:300]!a} must be 1 to {MAX_ORIGIN} printable "
            'characters with no space and no "+", e.g. example.com/backcheck'
        )
    return text


MAX_WITNESSES = 63  # a note holds 64 signature lines: the log's and 63 witnesses'.


def parse_witness_keys(text: str) -> tuple[str, ...]:
    """Witness verifier keys (c2sp.org/signed-note vkeys of type 0x04, name+keyid+base64), by
    commas or whitespace; each distinct, at most MAX_WITNESSES."""
    from infra.audit.notes import COSIGNATURE_V1, NoteError, parse_vkey

    variable = "BACKCHECK_WITNESS_KEYS"
    given = [part for part in text.replace(",", " ").split() if part]
    if len(given) > MAX_WITNESSES:
        raise ConfigError(f"{variable}: over {MAX_WITNESSES} witnesses")
    keys: list[str] = []
    names: set[str] = set()
    for n, part in enumerate(given, 1):
        try:
            verifier = parse_vkey(part)
        except NoteError as e:
            raise ConfigError(f"{variable}: witness {n} ({part[:80]!a}): {e}") from None
        if verifier.signature_type != COSIGNATURE_V1:
            raise ConfigError(
                f"{variable}: witness {n} ({verifier.name}) is not a cosigner key (type 0x04); "
                "`backcheck audit witness-keygen` prints one"
            )
        if verifier.name in names:
            raise ConfigError(f"{variable}: witness {verifier.name} is named twice")
        names.add(verifier.name)
        keys.append(verifier.vkey)
    return tuple(keys)


# A schema's name as the store's statements use it, unquoted: PostgreSQL folds an unquoted
# name to lower case, so only a name it keeps as written is taken.
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
_APPLICATION_NAME = re.compile(r"[\x20-\x7e]{1,63}")


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else "one of " + ", ".join(choices)


def _a_file(value: str) -> str | None:
    return None if value and "\x00" not in value else "the path of a file"


def _seconds(value: str) -> str | None:
    return None if value.isdigit() and int(value) <= 3600 else "whole seconds from 0 to 3600"


def _name(value: str) -> str | None:
    return None if _APPLICATION_NAME.fullmatch(value) else "1 to 63 printable ASCII characters"


# The libpq connection parameters a store URL may carry (as psql takes them), each with its
# rule: passed to every connection the store makes (infra/config `postgres_conninfo`,
# `postgres_parameters`). What is left out is left out on purpose: `options` (the store sets
# each connection's search_path to its schema, and `-c` settings would change how its
# statements run), and anything that carries a secret (`sslpassword`: a key's passphrase
# would sit in the URL, shown wherever the URL is) or names another server (`host`, `port`,
# `dbname`, `user`, `password`: the URL's own parts).
LIBPQ_PARAMETERS: dict[str, Callable[[str], str | None]] = {
    "sslmode": _one_of(*_SSLMODES),
    "sslrootcert": _a_file,
    "sslcert": _a_file,
    "sslkey": _a_file,
    "sslcrl": _a_file,
    "connect_timeout": _seconds,
    "application_name": _name,
    "target_session_attrs": _one_of(*_SESSION_ATTRS),
}
_NOT_TAKEN = {
    "options": "the store sets each connection's options itself (its schema's search_path); "
    "give server settings to the role instead (ALTER ROLE ... SET ...)",
    "sslpassword": "a passphrase does not belong in a URL; use a key file without one, "
    "readable by the store's user alone",
}


def parse_database_url(url: str, variable: str = "BACKCHECK_DATABASE_URL") -> str:
    """A store's address (BACKCHECK_DATABASE_URL, or `store migrate --to`), its query checked
    (ConfigError naming `variable` and the rule): a PostgreSQL `schema` the store's statements
    can use as it is written; a host and port that can be read (urllib would raise its
    ValueError whenever the store is named); libpq's connection parameters of
    LIBPQ_PARAMETERS, each once and by its rule, which every connection of the store is then
    made with; and no other parameter, which the store would connect without (a misspelt
    `ssl_mode=require` connecting in clear). Never quotes a password back."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number from 0 to 65535 raises here
    except ValueError:
        # not quoted back: what urllib took for a port may be part of a password
        raise ConfigError(
            f"{variable}: its host or port cannot be read: a port is a number from "
            "0 to 65535, an IPv6 host is written in [ ], and a / : @ in a password is "
            "percent-encoded (e.g. postgresql://USER:PASSWORD@HOST:5432/DB)"
        ) from None
    if not parts.scheme.startswith("postgres"):
        return url
    query = parse_qs(parts.query, keep_blank_values=True)
    for name in sorted(query):
        if name != "schema" and name not in LIBPQ_PARAMETERS:
            why = _NOT_TAKEN.get(
                name,
                "the store would connect without it; taken: schema, " + ", ".join(LIBPQ_PARAMETERS),
            )
            raise ConfigError(f"{variable}: the query parameter {name[:40]!r} is not taken: {why}")
        if len(query[name]) > 1:
            raise ConfigError(f"{variable}: {name} is given more than once")
        if name in LIBPQ_PARAMETERS and (rule := LIBPQ_PARAMETERS[name](query[name][0])):
            raise ConfigError(
                f"{variable}: {name} {query[name][0][:80]!r} cannot be used: it is {rule}"
            )
    schemas = query.get("schema", [])
    if schemas and not _SCHEMA.fullmatch(schemas[0]):
        raise ConfigError(
            f"{variable}: schema {schemas[0][:80]!r} cannot be used: lower-case letters, "
            "digits and _, beginning with a letter or _, at most 63 (PostgreSQL folds other "
            "names to lower case)"
        )
    return url


def postgres_parameters(url: str) -> dict[str, str]:
    """The libpq connection parameters a checked store URL carries (LIBPQ_PARAMETERS), and
    `connect_timeout` (POSTGRES_CONNECT_TIMEOUT unless the URL gives one)."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    given = {name: values[0] for name, values in query.items() if name in LIBPQ_PARAMETERS}
    return {"connect_timeout": str(POSTGRES_CONNECT_TIMEOUT), **given}


def conninfo(parameters: dict[str, str]) -> str:
    """A libpq connection string of `parameters`, each value quoted as libpq reads it (a
    quote or backslash in a password escaped)."""
    quoted = (v.replace("\\", "\\\\").replace("'", "\\'") for v in parameters.values())
    return " ".join(f"{k}='{v}'" for k, v in zip(parameters, quoted, strict=True))
