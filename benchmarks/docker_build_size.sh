#!/usr/bin/env bash
# Size of a variant image built by fsnbuild versus `docker build` of the equivalent Dockerfile
# (FROM the same base, pip install --require-hashes --no-cache-dir -r the lock). Containers
# cannot verify TLS here, so the Dockerfile's pip reads the same locked wheels from a
# loopback HTTP wheelhouse instead of the index; what it installs is identical.
# Needs: the stand-in and the variant image loaded in Docker (scripts/demo.sh does both).
set -euo pipefail
cd "$(dirname "$0")/.."
variant="${1:-sklearn}"
fsnbuild=.venv/bin/fsnbuild
work=$(mktemp -d /tmp/fsnbuild-bench.XXXXXX)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
$fsnbuild wheelhouse -v "$variant" "$work/wheels" >/dev/null
.venv/bin/pip download -q --no-deps --only-binary :all: -d "$work/wheels" pip 2>/dev/null
pipwheel=$(basename "$(ls "$work"/wheels/pip-*.whl)")
cp "locks/$variant.txt" "$work/lock.txt"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work/wheels" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
server=$!
base=$(.venv/bin/python -c "from fsnbuild.config import load_project; from pathlib import Path; p=load_project(Path('variants.toml')); print(p.base.repository + ':' + p.base.tag)")
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $base
COPY lock.txt /tmp/lock.txt
RUN python -c "import urllib.request as u; u.urlretrieve('http://127.0.0.1:$port/$pipwheel', '/tmp/$pipwheel')" \\
 && python /tmp/$pipwheel/pip install --require-hashes --no-cache-dir --no-index \\
      --find-links http://127.0.0.1:$port/ -r /tmp/lock.txt -q
DOCKERFILE
sleep 1
start=$(date +%s)
docker build -q --network host -t "fsnbuild-bench-$variant:dockerfile" "$work" >/dev/null
echo "docker build: $(( $(date +%s) - start )) s"
ref=$(.venv/bin/python -c "from fsnbuild.config import load_project; from pathlib import Path; p=load_project(Path('variants.toml')); print(p.product.image_ref(p.variants['$variant'].framework))")
for image in "$ref" "fsnbuild-bench-$variant:dockerfile"; do
  printf '%-45s %s bytes\n' "$image" "$(docker image inspect -f '{{.Size}}' "$image")"
done
