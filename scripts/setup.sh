#!/usr/bin/env bash
# Set up kamado on a fresh Debian/Ubuntu machine: system packages, a virtualenv, kamado.
# Usage: scripts/setup.sh [runtime|dev]   (dev adds the test tools and the host extra)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-runtime}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# libavcodec-extra: ffmpeg's ARIB caption decoder (libaribb24), so captions are kept.
runtime_pkgs=(ffmpeg libavcodec-extra python3-venv python3-dev gcc)
# Test suite: a real redis-server, sshd for SFTP staging, libvirt for the host agent,
# virt-xml-validate, systemd-analyze for the units, iproute2 for network namespaces;
# a compiler and SQLite's headers for EPGStation's native modules (its test server).
# chromium and a Japanese font for the screenshot of Flower's tasks page (docs/).
dev_pkgs=(redis-server openssh-server openssh-client pkg-config libvirt-dev libvirt-clients
          libvirt-daemon-driver-qemu qemu-system-x86 libxml2-utils systemd iproute2 procps
          busybox-static cpio socat util-linux chromium fonts-ipafont-gothic
          libsqlite3-dev g++ make)

wanted=("${runtime_pkgs[@]}")
if [ "$mode" = "dev" ]; then
  wanted+=("${dev_pkgs[@]}")
  # node and npm build the EPGStation test server; a node from elsewhere (with its own npm)
  # conflicts with Debian's npm package, so ask for them only when they are missing.
  command -v node >/dev/null || wanted+=(nodejs libnode-dev)  # its headers: node-gyp offline
  command -v npm >/dev/null || wanted+=(npm)
fi
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  # Another apt (a second set-up, unattended upgrades) may hold the lock: wait for it.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

if [ "$mode" = "dev" ]; then
  # libvirt's embedded QEMU driver wants this account even when told to run as root.
  if ! getent group libvirt-qemu >/dev/null; then $SUDO groupadd --system libvirt-qemu; fi
  if ! getent passwd libvirt-qemu >/dev/null; then
    $SUDO useradd --system --gid libvirt-qemu --no-create-home --home-dir /var/lib/libvirt \
      --shell /usr/sbin/nologin libvirt-qemu
  fi
  # A distribution kernel for the host agent's real-guest test (booted under QEMU TCG).
  kit="${KAMADO_TEST_GUEST_DIR:-$HOME/.cache/kamado/test-guest}"
  if ! ls "$kit"/linux-image-*-amd64_*.deb >/dev/null 2>&1 && [ "$(dpkg --print-architecture)" = amd64 ]; then
    kernel=$(apt-cache pkgnames linux-image- 2>/dev/null \
      | grep -E '^linux-image-[0-9]+\.[0-9]+\.[0-9]+-[0-9]+-amd64$' | sort -V | tail -n 1 || true)
    if [ -n "$kernel" ]; then
      mkdir -p "$kit"
      (cd "$kit" && apt-get download -qq "$kernel") || echo "could not download $kernel; the real-guest test will skip"
    fi
  fi
  # Debian's plain libavcodec (no ARIB caption decoder), unpacked beside the system's, so
  # the caption tests can run the real ffmpeg without the decoder (LD_LIBRARY_PATH).
  plain="${KAMADO_TEST_PLAIN_AVCODEC_DIR:-$HOME/.cache/kamado/plain-libavcodec}"
  avcodec=$(dpkg-query -W -f='${Depends}' libavcodec-extra 2>/dev/null | grep -o 'libavcodec-extra[0-9]*' | head -n 1 || true)
  if [ -n "$avcodec" ] && ! ls "$plain"/root/usr/lib/*/libavcodec.so.* >/dev/null 2>&1; then
    mkdir -p "$plain"
    version=$(dpkg-query -W -f='${Version}' "$avcodec")
    (cd "$plain" && apt-get download -qq "${avcodec/-extra/}=$version" && dpkg-deb -x ./*.deb root) \
      || echo "could not fetch ${avcodec/-extra/}; the no-caption-decoder test will skip"
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = "dev" ]; then
  .venv/bin/python -m pip install -q -e '.[dev,host]'
  # The real EPGStation 2.7.3 the EPGStation tests run (npm install + tsc, once; about a
  # minute): tests/fixtures/epgstation/README.md.
  .venv/bin/python -m tests.support.epgstation build >/dev/null
else
  .venv/bin/python -m pip install -q -e .
fi
echo "kamado installed in $(pwd)/.venv ($(.venv/bin/kamado --help >/dev/null && echo ok))"
