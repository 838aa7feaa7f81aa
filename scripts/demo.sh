#!/usr/bin/env bash
# The main job end to end on the embedded default (the sklearn variant): set up the machine,
# build the reproducible stand-in base and serve it from a real registry on 127.0.0.1, check
# and re-resolve the lock against the real package index, build the image, load it into
# Docker and run the smoke check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
variant="${1:-sklearn}"
fsnbuild=.venv/bin/fsnbuild

work=$(mktemp -d /tmp/fsnbuild-demo.XXXXXX)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 30); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.5; done
export FSNBUILD_REGISTRY_MIRROR="127.0.0.1:$port"

echo "== stand-in base (labelled as such; the real flwr/supernode cannot be pulled here)"
$fsnbuild standin build --push "127.0.0.1:$port"
echo "== locks"
$fsnbuild lock --check --variant "$variant"
$fsnbuild lock --variant "$variant"
echo "== image"
$fsnbuild image --variant "$variant" --smoke
