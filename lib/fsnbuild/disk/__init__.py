"""Appliance disks: DIB-built root file systems, assembled into bootable, content-named QCOW2s."""

from fsnbuild.disk.appliance import CONTEXT_SETTINGS, ContextSetting, CpuNeeds
from fsnbuild.disk.build import DiskInputs, DiskResult, build_disk
from fsnbuild.disk.elements import LintProblem, check_elements, lint_elements, tree_hash
from fsnbuild.disk.listing import ImageEntry, render_listing
from fsnbuild.disk.mirrors import Mirror, find_mirror

__all__ = [
    "CONTEXT_SETTINGS",
    "ContextSetting",
    "CpuNeeds",
    "DiskInputs",
    "DiskResult",
    "ImageEntry",
    "LintProblem",
    "Mirror",
    "build_disk",
    "check_elements",
    "find_mirror",
    "lint_elements",
    "render_listing",
    "tree_hash",
]
