"""OCI image plumbing: a verified blob store, image building, layouts and archives, a registry
client, and skopeo-style sources (``docker://``, ``docker-daemon:``, ``oci:``, ...)."""

from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.credentials import Credentials
from fsnbuild.oci.docker_archive import read_docker_archive, write_docker_archive
from fsnbuild.oci.image import (
    ConfigChanges,
    Descriptor,
    Image,
    NewLayer,
    build_image,
    canonical_json,
    load_image,
)
from fsnbuild.oci.layout import read_layout, write_layout, write_oci_archive
from fsnbuild.oci.reference import ImageRef
from fsnbuild.oci.registry import RegistryClient
from fsnbuild.oci.sources import (
    Source,
    fetch_image,
    load_into_docker,
    parse_source,
    push_image,
)

__all__ = [
    "BlobStore",
    "ConfigChanges",
    "Credentials",
    "Descriptor",
    "Image",
    "ImageRef",
    "NewLayer",
    "RegistryClient",
    "Source",
    "build_image",
    "canonical_json",
    "fetch_image",
    "load_image",
    "load_into_docker",
    "parse_source",
    "push_image",
    "read_docker_archive",
    "read_layout",
    "write_docker_archive",
    "write_layout",
    "write_oci_archive",
]
