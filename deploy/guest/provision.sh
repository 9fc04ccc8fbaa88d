#!/usr/bin/env bash
# Provision a Debian 12 guest for kamado's guest agent: the Intel VA-API drivers, ffmpeg,
# vainfo, qemu-guest-agent, a `kamado` system user in the render group, kamado in a venv
# under /opt/kamado, its config under /etc/kamado, and kamado-guest-agent.service enabled.
#
# Runs either inside the guest (as root, e.g. from cloud-init), or from the host against a
# debootstrap root with --root DIR (commands then run through chroot).
#
#   sudo debootstrap --include=systemd-sysv,linux-image-amd64 bookworm /srv/kamado-guest
#   sudo deploy/guest/provision.sh --root /srv/kamado-guest
#
# --dry-run writes the files into --root and prints every command instead of running it
# (no network, no root needed): how the tests check this script.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: provision.sh [--root DIR] [--wheel FILE] [--hostname NAME] [--non-free]
                    [--skip-packages] [--dry-run]

  --root DIR       provision the Debian 12 root at DIR through chroot (default: this system)
  --wheel FILE     install this kamado wheel (default: build one from this checkout, which
                   needs python3-venv here)
  --hostname NAME  the guest's hostname (default with --root: kamado-gpu, the host agent's
                   host.vm.name; its worker's heartbeat is celery@NAME)
  --non-free       intel-media-va-driver-non-free and firmware-misc-nonfree: H.264 encode
                   on Broadwell..Ice Lake, HuC for low-power encode (see README)
  --skip-packages  do not run apt-get (the packages are already there, e.g. cloud-init)
  --dry-run        write files into --root, print commands instead of running them
USAGE
}

ROOT=/
WHEEL=
HOSTNAME_SET=
NON_FREE=0
SKIP_PACKAGES=0
DRY_RUN=0
while (($#)); do
    case "$1" in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --wheel) WHEEL=${2:?--wheel needs a file}; shift 2 ;;
        --hostname) HOSTNAME_SET=${2:?--hostname needs a name}; shift 2 ;;
        --non-free) NON_FREE=1; shift ;;
        --skip-packages) SKIP_PACKAGES=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "provision.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UNIT="$REPO/deploy/systemd/kamado-guest-agent.service"
CONFIG="$HERE/kamado.guest.toml"
PREFIX=/opt/kamado
ROOT=${ROOT%/}
ROOT=${ROOT:-/}

die() { echo "provision.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

# Every command goes through run: printed in a dry run, executed otherwise.
run() {
    if ((DRY_RUN)); then
        printf 'would run:'
        printf ' %q' "$@"
        printf '\n'
        return 0
    fi
    "$@"
}

# A command inside the target system: directly, or through chroot into --root.
in_target() {
    if [[ $ROOT == / ]]; then
        run "$@"
    else
        run chroot "$ROOT" "$@"
    fi
}

# A path inside the target system, as seen from here.
target() { if [[ $ROOT == / ]]; then echo "$1"; else echo "$ROOT$1"; fi; }

check() {
    ((DRY_RUN)) && [[ $ROOT == / ]] && die "--dry-run needs --root (it writes files there)"
    ((DRY_RUN)) || [[ $EUID -eq 0 ]] || die "run as root (or use --dry-run --root DIR)"
    [[ -d $ROOT ]] || die "$ROOT: no such directory"
    [[ -f $UNIT ]] || die "$UNIT: missing (the systemd unit ships in deploy/systemd/)"
    # Stock Debian 12 has python3 without pip or ensurepip: the wheel is built in a venv.
    if ((!DRY_RUN)) && [[ -z $WHEEL ]] && ! python3 -c 'import ensurepip' 2>/dev/null; then
        die "building the kamado wheel needs python3-venv here: sudo apt-get install" \
            "python3-venv (or pass --wheel FILE)"
    fi
    local version
    version=$(cat "$(target /etc/debian_version)" 2>/dev/null || true)
    if [[ $version != 12* ]]; then
        echo "provision.sh: warning: $(target /etc/debian_version) says '${version:-nothing}'," \
            "this recipe is for Debian 12" >&2
    fi
}

mounted=()
mount_api() {
    # apt and maintainer scripts inside a chroot need /proc, /sys and /dev.
    [[ $ROOT == / ]] && return 0
    local fs
    for fs in proc sys dev; do
        run mount --bind "/$fs" "$ROOT/$fs"
        mounted+=("$ROOT/$fs")
    done
    trap unmount_api EXIT
}
unmount_api() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        run umount --lazy "${mounted[i]}" || true
    done
    mounted=()
}

packages() {
    # The GPU packages come from kamado's generation table (worker/backends/generations.py): i965
    # for Haswell, iHD and both QSV runtimes (libmfx1; libmfx-gen1.2 for Alder Lake and
    # newer) for the rest. Stdlib only, so this checkout's python3 runs it uninstalled.
    local list=() flag=()
    ((NON_FREE)) && flag=(--non-free)
    mapfile -t list < <(cd "$REPO" && python3 -m worker.backends.generations packages "${flag[@]}")
    ((${#list[@]})) || die "python3 -m worker.backends.generations printed no packages"
    list+=(qemu-guest-agent python3-venv ca-certificates)
    if ((NON_FREE)); then
        write_file /etc/apt/sources.list.d/kamado-non-free.sources 0644 <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: non-free non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    fi
    say "packages: ${list[*]}"
    mount_api
    in_target env DEBIAN_FRONTEND=noninteractive apt-get update
    in_target env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${list[@]}"
}

# write_file PATH MODE < content: a file inside the target, written in a dry run too.
write_file() {
    local path
    path=$(target "$1")
    mkdir -p "$(dirname "$path")"
    cat >"$path"
    chmod "$2" "$path"
}

user() {
    say "user kamado in groups render and video (render nodes are root:render 0660)"
    # systemd provides the render group on Debian 12; create it if a minimal root lacks it.
    if ((DRY_RUN)) || ! in_target getent group render >/dev/null; then
        in_target groupadd --system --force render
    fi
    if ((!DRY_RUN)) && in_target getent passwd kamado >/dev/null; then
        in_target usermod --append --groups render,video kamado
    else
        in_target useradd --system --user-group --groups render,video \
            --home-dir /var/lib/kamado --no-create-home --shell /usr/sbin/nologin kamado
    fi
}

venv() {
    say "kamado in $PREFIX/venv"
    local wheel=$WHEEL built=""
    if [[ -z $wheel ]]; then
        built=$(mktemp -d)
        run python3 -m venv "$built/venv"
        run "$built/venv/bin/pip" wheel --quiet --no-deps --wheel-dir "$built" "$REPO"
        wheel=$(find "$built" -name 'kamado-*.whl' -print -quit)
    fi
    # In a dry run nothing was built: name the wheel the build would have made.
    local name=${wheel:+$(basename "$wheel")}
    name=${name:-kamado-0.1.0-py3-none-any.whl}
    ((DRY_RUN)) || [[ -f $wheel ]] || die "${wheel:-the kamado wheel}: not found"
    mkdir -p "$(target $PREFIX/wheels)"
    if [[ -f $wheel ]]; then
        cp "$wheel" "$(target "$PREFIX/wheels/$name")"
    fi
    [[ -n $built ]] && rm -rf "$built"
    in_target python3 -m venv "$PREFIX/venv"
    in_target "$PREFIX/venv/bin/pip" install --no-cache-dir "$PREFIX/wheels/$name"
}

host_name() {
    # The host agent finds the guest's worker by its heartbeat, celery@<hostname>.
    local name=$HOSTNAME_SET
    if [[ -z $name && $ROOT != / ]]; then
        name=kamado-gpu
    fi
    [[ -z $name ]] && return 0
    say "hostname $name (the host agent's host.guest_hostname, default host.vm.name)"
    if [[ $ROOT == / ]]; then
        run hostnamectl set-hostname "$name"
    else
        printf '%s\n' "$name" | write_file /etc/hostname 0644
    fi
}

state_dir() {
    # The unit creates it at its first start; `kamado guest probe` run by hand before
    # that needs it too.
    say "state directory /var/lib/kamado (kamado:kamado 0750)"
    in_target install -d -o kamado -g kamado -m 0750 /var/lib/kamado
}

files() {
    say "config in /etc/kamado, unit kamado-guest-agent.service"
    mkdir -p "$(target /etc/kamado)"
    chmod 0750 "$(target /etc/kamado)"
    if [[ ! -e $(target /etc/kamado/kamado.toml) ]]; then
        write_file /etc/kamado/kamado.toml 0640 <"$CONFIG"
    fi
    if [[ ! -e $(target /etc/kamado/kamado.env) ]]; then
        write_file /etc/kamado/kamado.env 0600 <<'ENV'
# Read by systemd (as root) for kamado-guest-agent.service. The broker's password lives here.
#KAMADO_BROKER_URL=redis://kamado:CHANGE-ME@broker.example:6379/0
ENV
    fi
    in_target chown root:kamado /etc/kamado /etc/kamado/kamado.toml
    write_file /etc/systemd/system/kamado-guest-agent.service 0644 <"$UNIT"
    if [[ $ROOT == / ]]; then
        run systemctl daemon-reload
        # qemu-guest-agent needs no enabling: udev starts it when the virtio channel appears.
        run systemctl enable kamado-guest-agent.service
    else
        # Enabling offline only creates the wants/ links; nothing starts in the chroot.
        run systemctl --root="$ROOT" enable kamado-guest-agent.service
    fi
}

check
((SKIP_PACKAGES)) || packages
user
host_name
state_dir
venv
files
unmount_api
say "done. Set KAMADO_BROKER_URL in /etc/kamado/kamado.env, then in the guest:"
say "  sudo -u kamado $PREFIX/venv/bin/kamado guest probe --refresh   # which backends work"
