"""variants.toml: the typed project model and its validating loader."""

from fsnbuild.config.load import load_project
from fsnbuild.config.model import Base, DiskSettings, Index, Product, Project, Target, Variant

__all__ = [
    "Base",
    "DiskSettings",
    "Index",
    "Product",
    "Project",
    "Target",
    "Variant",
    "load_project",
]
