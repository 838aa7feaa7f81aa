"""fsnbuild's reproducible local stand-in for the Flower SuperNode base image."""

from fsnbuild.standin.build import (
    LABELS,
    REPOSITORY,
    TAG,
    build_standin,
    build_standin_for_project,
)
from fsnbuild.standin.serve import serve_standin

__all__ = [
    "LABELS",
    "REPOSITORY",
    "TAG",
    "build_standin",
    "build_standin_for_project",
    "serve_standin",
]
