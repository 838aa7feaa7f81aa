"""Locking: resolve variants.toml into hashed, per-variant lockfiles for the target platform."""
