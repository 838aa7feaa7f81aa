"""fsnbuild: reproducible Flower SuperNode appliances from hashed locks."""

__version__ = "0.1.0"
