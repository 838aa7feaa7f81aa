"""configure.sh, the appliance's boot-time step, run against a fake context and a stub docker.

The stub stands in for the Docker engine only to record what configure.sh asks of it; the
script itself, bash, grep and base64 are the real ones.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fsnbuild.disk.appliance import CONTEXT_SETTINGS, X86_64_V2, CpuNeeds
from fsnbuild.disk.vm import context_sh

CONFIGURE = (
    Path(__file__).resolve().parents[2] / "elements/fsn-appliance/fsn-appliance-files/configure.sh"
)
STUB_DOCKER = """#!/bin/bash
echo "docker $*" >> "$STUB_LOG"
case "$1 $2" in
    "image inspect") [ -e "$STUB_LOADED" ] ;;
    "load -i") touch "$STUB_LOADED" ;;
    "run -d") [ -z "${STUB_RUN_FAILS:-}" ] || { echo "$STUB_RUN_FAILS" >&2; exit 125; }
        echo 0123456789abcdef0123456789abcdef ;;
esac
"""
ALL_V2 = "flags\t\t: fpu " + " ".join(X86_64_V2) + " avx2\n"


def _run(
    tmp_path: Path,
    context: dict[str, str],
    cpuinfo: str = ALL_V2,
    framework: str = "sklearn",
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(STUB_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "image.env").write_text(
        f"FSN_FRAMEWORK='{framework}'\nFSN_VERSION='1.25.0'\n"
        f"FSN_IMAGE_REF='flower-supernode-{framework}:1.25.0'\n"
        f"FSN_IMAGE_DIGEST='sha256:{'ab' * 32}'\n"
        f"FSN_IMAGE_ARCHIVE='{tmp_path}/image.tar'\n"
        f"FSN_CPU_FLAGS='{' '.join(CpuNeeds.of(framework).flags)}'\n"
    )
    (tmp_path / "context.sh").write_text(context_sh(context))
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FSN_IMAGE_ENV": str(tmp_path / "image.env"),
        "FSN_CONTEXT_FILE": str(tmp_path / "context.sh"),
        "FSN_CPUINFO": str(tmp_path / "cpuinfo"),
        "FSN_STATE_DIR": str(tmp_path / "state"),
        "STUB_LOG": str(tmp_path / "docker.log"),
        "STUB_LOADED": str(tmp_path / "loaded"),
        **(extra_env or {}),
    }
    result = subprocess.run(
        ["bash", str(CONFIGURE)], env=env, capture_output=True, text=True, timeout=60
    )
    log = tmp_path / "docker.log"
    return result, log.read_text().splitlines() if log.exists() else []


def test_framework_mismatch_is_fatal_names_both_and_starts_nothing(tmp_path: Path) -> None:
    result, docker = _run(tmp_path, {"ML_FRAMEWORK": "pytorch", "SUPERLINK_ADDRESS": "sl:9092"})
    assert result.returncode == 1
    assert "FATAL: ML_FRAMEWORK=pytorch but this appliance was built for ML_FRAMEWORK=sklearn" in (
        result.stderr
    )
    assert "no container started" in result.stderr
    assert docker == []


def test_missing_framework_is_fatal(tmp_path: Path) -> None:
    result, docker = _run(tmp_path, {"SUPERLINK_ADDRESS": "sl:9092"})
    assert result.returncode == 1
    assert "ML_FRAMEWORK is not set in the context; this appliance runs sklearn" in result.stderr
    assert docker == []


def test_matching_framework_loads_image_once_and_starts_supernode(tmp_path: Path) -> None:
    context = {
        "ML_FRAMEWORK": "sklearn",
        "SUPERLINK_ADDRESS": "superlink.test:9092",
        "SUPERNODE_INSECURE": "YES",
        "SUPERNODE_NODE_CONFIG": "partition-id=0 num-partitions=2",
        "SUPERNODE_MAX_RETRIES": "7",
    }
    (tmp_path / "image.tar").write_bytes(b"docker-archive")
    result, docker = _run(tmp_path, context)
    assert result.returncode == 0, result.stderr
    assert f"docker load -i {tmp_path}/image.tar" in docker
    assert not (tmp_path / "image.tar").exists()
    run = [line for line in docker if line.startswith("docker run")]
    assert run == [
        "docker run -d --name flower-supernode --restart unless-stopped --network host "
        "flower-supernode-sklearn:1.25.0 --superlink superlink.test:9092 --insecure "
        "--node-config partition-id=0 num-partitions=2 --max-retries 7"
    ]
    assert "supernode container started: 0123456789ab" in result.stdout

    again, docker = _run(tmp_path, context)
    assert again.returncode == 0
    assert [line for line in docker if line.startswith("docker load")] == [
        f"docker load -i {tmp_path}/image.tar"
    ]


def test_image_gone_from_engine_and_archive_is_one_fatal_error(tmp_path: Path) -> None:
    result, docker = _run(tmp_path, {"ML_FRAMEWORK": "sklearn", "SUPERLINK_ADDRESS": "sl:9092"})
    assert result.returncode == 1
    assert "FATAL: the engine lacks flower-supernode-sklearn:1.25.0 and" in result.stderr
    assert "load" not in " ".join(docker)
    assert "run" not in " ".join(docker)


def test_engine_refusing_the_container_is_one_fatal_error(tmp_path: Path) -> None:
    refusal = "Error response from daemon: AppArmor enabled but the profile could not be loaded"
    (tmp_path / "image.tar").write_bytes(b"docker-archive")
    result, docker = _run(
        tmp_path,
        {"ML_FRAMEWORK": "sklearn", "SUPERLINK_ADDRESS": "sl:9092"},
        extra_env={"STUB_RUN_FAILS": refusal},
    )
    assert result.returncode == 1
    assert refusal in result.stderr
    assert "FATAL: the Docker engine could not start flower-supernode-sklearn:1.25.0" in (
        result.stderr
    )
    assert "container started" not in result.stdout
    assert [line.split()[1] for line in docker] == [
        "info",
        "info",
        "image",
        "load",
        "image",
        "rm",
        "run",
    ]


def test_root_certificates_are_mounted_for_tls(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    encoded = subprocess.run(["base64", "-w0"], input=pem, capture_output=True, text=True).stdout
    context = {
        "ML_FRAMEWORK": "sklearn",
        "SUPERLINK_ADDRESS": "[::1]:9092",
        "SUPERNODE_ROOT_CERTIFICATES": encoded,
    }
    (tmp_path / "image.tar").write_bytes(b"docker-archive")
    result, docker = _run(tmp_path, context)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state/certs/ca.crt").read_text() == pem
    run = next(line for line in docker if line.startswith("docker run"))
    assert f"-v {tmp_path}/state/certs/ca.crt:/app/certs/ca.crt:ro" in run
    assert run.endswith("--superlink [::1]:9092 --root-certificates /app/certs/ca.crt")


def test_cpu_without_avx_stops_tensorflow_with_one_clear_error(tmp_path: Path) -> None:
    cpuinfo = "flags\t\t: fpu " + " ".join(X86_64_V2) + "\n"
    context = {"ML_FRAMEWORK": "tensorflow", "SUPERLINK_ADDRESS": "sl:9092"}
    result, docker = _run(tmp_path, context, cpuinfo=cpuinfo, framework="tensorflow")
    assert result.returncode == 1
    assert "FATAL: this CPU lacks avx, which tensorflow needs" in result.stderr
    assert docker == []


def test_cpu_below_x86_64_v2_is_fatal_for_sklearn(tmp_path: Path) -> None:
    result, docker = _run(
        tmp_path,
        {"ML_FRAMEWORK": "sklearn", "SUPERLINK_ADDRESS": "sl:9092"},
        cpuinfo="flags\t\t: fpu sse2 cx16\n",
    )
    assert result.returncode == 1
    assert "this CPU lacks lahf_lm popcnt sse4_1 sse4_2 ssse3, which sklearn needs" in result.stderr
    assert docker == []


@pytest.mark.parametrize("address", ["", "no-port", "host:port", "a b:1"])
def test_superlink_address_must_be_host_and_port(tmp_path: Path, address: str) -> None:
    result, docker = _run(tmp_path, {"ML_FRAMEWORK": "sklearn", "SUPERLINK_ADDRESS": address})
    assert result.returncode == 1
    assert f"SUPERLINK_ADDRESS='{address}' is not HOST:PORT" in result.stderr
    assert docker == []


def test_context_values_are_parsed_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    context = {
        "ML_FRAMEWORK": "sklearn",
        "SUPERLINK_ADDRESS": "sl:9092",
        "SUPERNODE_NODE_CONFIG": f"x=1'; touch {marker}; '",
    }
    (tmp_path / "image.tar").write_bytes(b"docker-archive")
    result, docker = _run(tmp_path, context)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    run = next(line for line in docker if line.startswith("docker run"))
    assert f"--node-config x=1'; touch {marker}; '" in run


def test_configure_reads_every_context_setting_the_listing_offers() -> None:
    lines = CONFIGURE.read_text().splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    missing = [s.name for s in CONTEXT_SETTINGS if s.name.removeprefix("SUPERNODE_") not in code]
    assert missing == []
