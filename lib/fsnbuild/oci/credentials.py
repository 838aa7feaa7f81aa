"""Registry credentials: given explicitly, or read from the ``auths`` of Docker's config.json
(credential helpers and ``credsStore`` are not consulted)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fsnbuild.errors import RegistryError

CREDENTIALS_HINT = (
    "give credentials with `docker login {host}` (read from ~/.docker/config.json `auths`, "
    "or $DOCKER_CONFIG/config.json) or pass a username and password"
)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


def docker_config_credentials(host: str, config_path: Path | None = None) -> Credentials | None:
    """The ``auths`` entry for ``host`` in Docker's config.json, if there is one."""
    if config_path is None:
        folder = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
        config_path = Path(folder) / "config.json"
    try:
        auths = json.loads(config_path.read_text()).get("auths") or {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        raise RegistryError(
            f"{config_path}: cannot read Docker credentials ({exc})",
            hint="fix the file or pass credentials explicitly",
        ) from None
    for key, entry in auths.items():
        # Keys are written as "host:port", "https://host" or "https://host/v1/".
        if (urlsplit(key).netloc or key.split("/")[0]) == host and entry.get("auth"):
            try:
                pair = base64.b64decode(entry["auth"], validate=True).decode()
            except ValueError:
                raise RegistryError(
                    f"{config_path}: the auth entry for {host} is not base64 of USER:PASSWORD",
                    hint=f"run `docker login {host}` again",
                ) from None
            user, _, password = pair.partition(":")
            return Credentials(user, password)
    return None
