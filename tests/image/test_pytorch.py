"""The pytorch path as far as this machine allows: the genuine CPU torch wheel through a local
mirror of the CPU index, transformers, peft and bitsandbytes from the real index. No CPU
torchvision wheel exists here, so this lock leaves torchvision out and is not committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.image.build import Options, build_variant_image
from fsnbuild.image.smoke import smoke_check
from fsnbuild.lock import run
from fsnbuild.lock.localindex import build_simple_index, serve
from fsnbuild.oci.sources import load_into_docker

from .conftest import ROOT

TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


@pytest.mark.slow
def test_cpu_torch_llm_image_imports_without_cuda(tmp_path: Path, standin_layout: Path) -> None:
    if not TORCH_WHEEL.exists():
        pytest.skip(f"{TORCH_WHEEL} is not on this machine")
    text = (ROOT / "variants.toml").read_text()
    text = text.replace('    "torchvision",\n', "").replace(', torchvision = "pytorch-cpu"', "")
    text = text.replace('"torch", "torchvision", ', '"torch", ')
    (tmp_path / "variants.toml").write_text(text)
    build_simple_index(TORCH_WHEEL.parent, tmp_path / "cpu-index")
    with serve(tmp_path / "cpu-index") as mirror:
        project = load_project(tmp_path / "variants.toml")
        run.lock(project, variants=["pytorch"], index_overrides={"pytorch-cpu": mirror})
        options = Options(
            out_dir=tmp_path / "out",
            cache_dir=tmp_path / "cache",
            base_source=f"oci:{standin_layout}",
            index_overrides={"pytorch-cpu": mirror},
        )
        result = build_variant_image(project, "pytorch", options)
    torch_layers = [
        h for h in result.image.config["history"] if "torch==2.13.0+cpu" in h.get("comment", "")
    ]
    assert len(torch_layers) == 1  # torch is heavy: a layer of its own
    load_into_docker(result.docker_archive)
    versions = json.loads(smoke_check(result.ref, ["torch", "transformers", "peft"]))
    assert versions["torch"] == "2.13.0+cpu"
    assert versions["torch.cuda.is_available"] is False
    assert versions["flwr"] == "1.25.0"
