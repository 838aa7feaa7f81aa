#!/usr/bin/env bash
# Wall time and peak memory of fsnbuild next to the tools a user would otherwise run:
#   lock:  fsnbuild lock (uv, two passes: pins + PEP 751 files)  vs  uv pip compile  vs  pip-compile
#   image: fsnbuild image from an empty cache (downloads included)  vs  docker build (see
#          docker_build_size.sh for that side; it needs a loopback wheelhouse here).
# Needs the stand-in in out/ (scripts/demo.sh or `fsnbuild standin build`). Prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
variant="${1:-sklearn}"
work=$(mktemp -d /tmp/fsnbuild-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
measure() {  # label, command...: prints "label  seconds  max-RSS-MB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r secs kb <"$work/t"
  printf '%-44s %8.1f s %8.0f MB\n' "$label" "$secs" "$((kb / 1024))"
}
cp variants.toml "$work/"
.venv/bin/python - "$variant" >"$work/req.in" <<'PY'
import sys
from pathlib import Path
from fsnbuild.config import load_project
p = load_project(Path("variants.toml"))
print("\n".join([*p.base.provides, *p.variants[sys.argv[1]].packages]))
PY
export UV_CACHE_DIR="$work/uv-cache"   # cold resolver caches on every side
measure "fsnbuild lock -v $variant (cold uv cache)" .venv/bin/fsnbuild -c "$work/variants.toml" lock -v "$variant"
measure "fsnbuild lock -v $variant (warm)" .venv/bin/fsnbuild -c "$work/variants.toml" lock -v "$variant"
measure "uv pip compile --generate-hashes (warm)" .venv/bin/uv pip compile "$work/req.in" --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --only-binary :all: --generate-hashes -q -o "$work/uv.txt"
measure "pip-compile --generate-hashes (cold)" env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= \
  .venv/bin/pip-compile "$work/req.in" --generate-hashes --quiet --cache-dir "$work/pip-cache" -o "$work/pip.txt"
measure "fsnbuild image -v $variant (empty cache)" .venv/bin/fsnbuild image -v "$variant" \
  --cache-dir "$work/cache" --out "$work/out" --base oci:out/supernode-standin.oci
measure "fsnbuild image -v $variant (cache hit)" .venv/bin/fsnbuild image -v "$variant" \
  --cache-dir "$work/cache" --out "$work/out" --base oci:out/supernode-standin.oci
