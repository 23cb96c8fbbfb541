"""A SoftHSM2 token for the PKCS#11 tests: Debian's `softhsm2` (installed by .ci/run), reached
through python-pkcs11 as a hardware security module would be.

The token is made once per test process, in a directory of its own (SOFTHSM2_CONF pointing at a
configuration written here): SoftHSM reads its tokens when the module is first initialised, and
python-pkcs11 initialises a module once per process, so every test of the process uses the one
token, each with key labels of its own. Without softhsm2 or python-pkcs11 the tests are skipped
with the reason, and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from infra.config import Settings

MODULES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
TOKEN_LABEL = "backcheck-test"
PIN = "4711-test"
SO_PIN = "so-0815-test"


@dataclass(frozen=True)
class Token:
    module: Path
    label: str
    pin: str
    conf: Path

    def env(self) -> dict[str, str]:
        """What a `backcheck` process needs to reach the token."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "BACKCHECK_PKCS11_MODULE": str(self.module),
            "BACKCHECK_PKCS11_TOKEN_LABEL": self.label,
            "BACKCHECK_PKCS11_PIN": self.pin,
        }

    def settings(self, settings: Settings, key_label: str) -> Settings:
        return settings.model_copy(
            update={
                "key_provider": "pkcs11",
                "pkcs11_module": self.module,
                "pkcs11_token_label": self.label,
                "pkcs11_pin": self.pin,
                "pkcs11_key_label": key_label,
            }
        )


def key_label() -> str:
    """A key label no other test uses on the shared token."""
    return f"k-{uuid4().hex[:20]}"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    util = shutil.which("softhsm2-util")
    module = next((m for m in MODULES if m.exists()), None)
    if util is None or module is None:
        _missing("softhsm2 is not installed (apt-get install softhsm2)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        _missing("python-pkcs11 is not installed (pip install -e '.[dev]')")
    assert util is not None
    assert module is not None
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    yield Token(module, TOKEN_LABEL, PIN, conf)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before
