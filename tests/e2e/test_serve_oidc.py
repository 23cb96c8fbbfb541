"""`backcheck serve` with OIDC configured: a mistake in the BACKCHECK_OIDC_* settings stops it
in one line (exit 78, naming the variable); configured, its banner names the issuer and an
OIDC bearer signs staff in over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.problem import EX_CONFIG
from tests.e2e.test_cli import BACKCHECK
from tests.oidc import AUDIENCE, ISSUER, key_set, rsa_key, sign
from tests.tracebacks import refuse_traceback


def environment(tmp_path: Path, **oidc: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    return clean | {
        "BACKCHECK_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        **{f"BACKCHECK_OIDC_{k.upper()}": v for k, v in oidc.items()},
    }


@pytest.mark.parametrize(
    ("oidc", "said"),
    [
        ({"issuer": ISSUER}, "BACKCHECK_OIDC_AUDIENCE, BACKCHECK_OIDC_JWKS, BACKCHECK_OIDC_ROLE"),
        (
            {"issuer": ISSUER, "audience": "b", "jwks": "/x.json", "role_map": "hr=boss"},
            "BACKCHECK_OIDC_ROLE_MAP: 'boss' (for 'hr') is not a backcheck staff role",
        ),
        (
            {
                "issuer": ISSUER,
                "audience": "b",
                "jwks": "http://idp.example.com/k",
                "role_map": "hr=recruiter",
            },
            "BACKCHECK_OIDC_JWKS: 'http://idp.example.com/k' is plain http to another host",
        ),
    ],
)
def test_a_mistake_in_the_oidc_settings_stops_serve_in_one_line(
    tmp_path: Path, oidc: dict[str, str], said: str
) -> None:
    result = subprocess.run(
        [*BACKCHECK, "serve", "--port", "0"],
        env=environment(tmp_path, **oidc),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EX_CONFIG, result.stderr
    (line,) = result.stderr.splitlines()
    assert said in line


def test_serve_names_the_issuer_and_signs_staff_in_with_an_oidc_bearer(tmp_path: Path) -> None:
    key: rsa.RSAPrivateKey = rsa_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(key_set((key, "k1")))
    env = environment(
        tmp_path, issuer=ISSUER, audience=AUDIENCE, jwks=str(jwks), role_map="hr-staff=recruiter"
    )
    process = subprocess.Popen(
        [*BACKCHECK, "serve", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    stdout = process.stdout
    banner: list[str] = []
    # a thread reads the lines: select() on a buffered text pipe misses lines it buffered
    reader = threading.Thread(target=lambda: banner.extend(iter(stdout.readline, "")))
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("OIDC:" in line for line in banner) and time.monotonic() < deadline:
            time.sleep(0.1)
        base = next(line.split()[-1] for line in banner if "serving on" in line)
        assert f"OIDC: issuer {ISSUER}, audience {AUDIENCE}, keys from {jwks}" in "".join(banner)
        request = urllib.request.Request(
            f"{base}/v1/me", headers={"Authorization": f"Bearer {sign(key)}"}
        )
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        me = None
        while me is None:  # the banner comes before the server listens
            try:
                with direct.open(request, timeout=10) as response:
                    me = orjson.loads(response.read())
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert (me["principal"], me["role"], me["authentication"]) == (
            "oidc:alice",
            "recruiter",
            "oidc",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        assert process.stderr is not None
        refuse_traceback(process.args, process.stderr.read())
