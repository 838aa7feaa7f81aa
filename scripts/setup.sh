#!/usr/bin/env bash
# Install everything fsnbuild needs on a fresh Debian 12 machine (as root) and start the
# Docker engine. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  docker.io docker-registry skopeo umoci apache2-utils
  debootstrap sudo qemu-utils qemu-system-x86 fdisk e2fsprogs dosfstools squashfs-tools cpio
  grub-pc-bin grub-common genisoimage busybox-static openssl curl time
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import fsnbuild, pytest, diskimage_builder" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.fsnbuild-installed ]; then
  echo "setup: installing fsnbuild and its Python dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev,disk]' 2>&1 | grep -v '^WARNING: Location' || true
  touch .venv/.fsnbuild-installed
fi

if ! timeout 5 docker version >/dev/null 2>&1; then
  echo "setup: starting the Docker engine"
  # No bridge and no iptables: containers get no network unless they ask for the host's.
  nohup dockerd --bridge=none --iptables=false >/var/log/fsnbuild-dockerd.log 2>&1 &
  for _ in $(seq 60); do
    timeout 5 docker version >/dev/null 2>&1 && break
    sleep 1
  done
  timeout 5 docker version >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/fsnbuild-dockerd.log" >&2; exit 1; }
fi
