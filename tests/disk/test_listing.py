"""The marketplace listing: OpenNebula YAML generated from the inputs alone."""

from __future__ import annotations

from pathlib import Path

import yaml

from fsnbuild.config import load_project
from fsnbuild.disk.appliance import CONTEXT_SETTINGS
from fsnbuild.disk.listing import ImageEntry, render_listing

PROJECT = Path(__file__).resolve().parents[2] / "variants.toml"
IMAGE = ImageEntry(
    file_name="flower-supernode-sklearn-1.25.0-0123456789ab.qcow2",
    virtual_size=8 << 30,
    file_size=123456789,
    sha256="0123456789ab" + "cd" * 26,
)


def test_listing_is_byte_identical_for_the_same_inputs() -> None:
    project = load_project(PROJECT)
    first = render_listing(project, project.variants["sklearn"], IMAGE)
    second = render_listing(load_project(PROJECT), load_project(PROJECT).variants["sklearn"], IMAGE)
    assert first.encode() == second.encode()


def test_listing_describes_the_image_and_fixes_the_framework() -> None:
    project = load_project(PROJECT)
    listing = yaml.safe_load(render_listing(project, project.variants["sklearn"], IMAGE))
    assert listing["format"] == "qcow2"
    assert listing["creation_time"] == project.product.epoch
    assert (listing["os-id"], listing["os-release"], listing["os-arch"]) == (
        "Debian",
        "12",
        "x86_64",
    )
    assert listing["hypervisor"] == "KVM"
    assert listing["images"] == [
        {
            "name": "flower-supernode-sklearn-1.25.0-0123456789ab",
            "url": IMAGE.file_name,
            "type": "OS",
            "dev_prefix": "vd",
            "driver": "qcow2",
            "size": 8 << 30,
            "file_size": 123456789,
            "checksum": {"sha256": IMAGE.sha256},
        }
    ]
    template = listing["opennebula_template"]
    assert (
        template["user_inputs"]["ML_FRAMEWORK"]
        == "M|fixed|ML framework of this appliance| |sklearn"
    )
    assert template["user_inputs"]["SUPERLINK_ADDRESS"].startswith("M|text|")
    assert sorted(template["user_inputs"]) == sorted(s.name for s in CONTEXT_SETTINGS)
    assert template["context"]["ML_FRAMEWORK"] == "$ML_FRAMEWORK"
    assert template["cpu_model"] == {"model": "Nehalem"}


def test_tensorflow_listing_asks_for_a_cpu_model_with_avx() -> None:
    project = load_project(PROJECT)
    image = ImageEntry("flower-supernode-tensorflow-1.25.0-abc.qcow2", 1, 1, "00" * 32)
    listing = yaml.safe_load(render_listing(project, project.variants["tensorflow"], image))
    assert listing["opennebula_template"]["cpu_model"] == {"model": "SandyBridge"}
    assert "avx" in listing["description"]
