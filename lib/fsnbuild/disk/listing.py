"""The OpenNebula marketplace listing for one QCOW2, as YAML text.

Written by hand rather than by a YAML library so that the bytes depend on the inputs alone:
keys in a fixed order, every string double-quoted (JSON strings are valid YAML), no dates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fsnbuild.config import Project, Variant
from fsnbuild.disk.appliance import CONTEXT_SETTINGS, CpuNeeds

PUBLISHER = "fsnbuild"
OS_IDS = {"debian": "Debian"}
OS_RELEASES = {"bookworm": "12", "trixie": "13"}


@dataclass(frozen=True)
class ImageEntry:
    """The QCOW2 the listing points at."""

    file_name: str
    virtual_size: int
    file_size: int
    sha256: str


def render_listing(project: Project, variant: Variant, image: ImageEntry) -> str:
    """The listing YAML; the same arguments give the same bytes."""
    framework = variant.framework
    cpu = CpuNeeds.of(framework)
    version = project.product.version
    lines = [
        "---",
        f"name: {_q(f'Flower SuperNode {version} ({framework})')}",
        f"version: {_q(version)}",
        f"publisher: {_q(PUBLISHER)}",
        "description: |-",
        f"  Flower SuperNode {version} for {framework}, as a Debian appliance that boots,",
        "  starts Docker and runs the flower-supernode container of this variant.",
        "",
        f"  Set ML_FRAMEWORK={framework} (fixed) and SUPERLINK_ADDRESS (HOST:PORT) in the",
        "  context. Any other ML_FRAMEWORK stops with a fatal error and starts nothing.",
        f"  The CPU needs: {' '.join(cpu.flags)} (CPU model {cpu.model} or newer).",
        f"short_description: {_q(f'Flower SuperNode {version} for {framework} (Docker)')}",
        "tags:",
        *(f"- {_q(tag)}" for tag in ("flower", "federated-learning", framework, "docker")),
        "format: qcow2",
        f"creation_time: {project.product.epoch}",
        f"os-id: {_q(OS_IDS.get(project.disk.distribution, project.disk.distribution))}",
        f"os-release: {_q(OS_RELEASES.get(project.disk.release, project.disk.release))}",
        f"os-arch: {_q(project.target.arch)}",
        "hypervisor: KVM",
        "opennebula_template:",
        "  context:",
        '    network: "YES"',
        '    ssh_public_key: "$USER[SSH_PUBLIC_KEY]"',
        *(f"    {s.name}: {_q('$' + s.name)}" for s in CONTEXT_SETTINGS),
        '  cpu: "2"',
        '  memory: "4096"',
        "  cpu_model:",
        f"    model: {_q(cpu.model)}",
        "  os:",
        f"    arch: {_q(project.target.arch)}",
        f"  inputs_order: {_q(','.join(s.name for s in CONTEXT_SETTINGS))}",
        "  user_inputs:",
        *(
            f"    {s.name}: {_q(s.user_input(framework if s.kind == 'fixed' else None))}"
            for s in CONTEXT_SETTINGS
        ),
        "images:",
        f"- name: {_q(image.file_name.removesuffix('.qcow2'))}",
        f"  url: {_q(image.file_name)}",
        "  type: OS",
        "  dev_prefix: vd",
        "  driver: qcow2",
        f"  size: {image.virtual_size}",
        f"  file_size: {image.file_size}",
        "  checksum:",
        f"    sha256: {_q(image.sha256)}",
    ]
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
