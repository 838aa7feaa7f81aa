"""The smoke check: run the loaded image in the real Docker engine and import its stack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fsnbuild.errors import ImageError


def smoke_check(
    ref: str,
    modules: Sequence[str],
    *,
    python: str = "/python/venv/bin/python",
    docker_client: Any = None,
) -> str:
    """Import ``modules`` and flwr inside ``ref`` with no network; return what it printed."""
    import docker

    client = docker_client or docker.from_env()
    names = list(dict.fromkeys([*modules, "flwr"]))
    script = (
        "import importlib, json, sys\n"
        f"mods = {names!r}\n"
        "out = {m: getattr(importlib.import_module(m), '__version__', 'ok') for m in mods}\n"
        "if 'torch' in mods:\n"
        "    import torch; out['torch.cuda.is_available'] = torch.cuda.is_available()\n"
        "print(json.dumps(out, sort_keys=True))\n"
    )
    try:
        output = client.containers.run(
            ref,
            ["-c", script],
            entrypoint=[python],
            network_mode="none",
            remove=True,
            stdout=True,
            stderr=True,
        )
    except Exception as exc:  # ContainerError, ImageNotFound, APIError
        raise ImageError(
            f"smoke check of {ref} failed: {str(exc)[-800:]}",
            hint="the image does not import its stack; see the output above",
        ) from None
    return str(output.decode().strip().splitlines()[-1])
