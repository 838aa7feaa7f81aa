"""Allow ``python -m fsnbuild``."""

from fsnbuild.cli import main

main()
