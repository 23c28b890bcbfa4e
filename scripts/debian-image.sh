#!/usr/bin/env bash
# Build (once) a Debian systemd image for podman with debootstrap, and the podman configuration this kind of
# machine needs. Usage: debian-image.sh SUITE NAME VAR PACKAGE...
#   SUITE    bookworm (Debian 12) or trixie (Debian 13)
#   NAME     image repository; the tag is debian<release>-<hash of suite and packages>
#   VAR      the variable to print the image name as (RELAY_IMAGE, TRIXIE_IMAGE, ...)
#   PACKAGE  everything the containers need, baked in: they run with host networking and never reach a mirror
# Prints the variables to export (CONTAINERS_CONF, VAR). Users: scripts/relay-image.sh, test stage 45-trixie.
#
# The mirror is read from this machine's own apt sources at run time; the project never names a package host.
# A suite the host has no source for (trixie on a Debian 12 host) comes from the archive of the host's own
# release: the same Debian archive, another suite.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: debian-image.sh SUITE NAME VAR PACKAGE..." >&2; exit 2; }
SUITE=$1 NAME=$2 VAR=$3
shift 3
PACKAGES=("$@")

case "$SUITE" in
  bookworm) RELEASE=12 ;;
  trixie) RELEASE=13 ;;
  *) echo "debian-image: unknown suite $SUITE (bookworm, trixie)" >&2; exit 2 ;;
esac
CACHE=${RELAY_IMAGE_CACHE:-/var/cache/o365-smtp-oauth}
# DEBIAN_IMAGE_DISABLE_UNITS: units the packages enable that the image keeps off (part of the key).
DISABLE_UNITS=${DEBIAN_IMAGE_DISABLE_UNITS:-}
KEY=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" ${DISABLE_UNITS:+"disable: $DISABLE_UNITS"} | sha256sum | cut -c1-12)
IMAGE=${!VAR:-$NAME:debian$RELEASE-$KEY}
mkdir -p "$CACHE"

# podman on a machine without systemd-managed cgroups and with tight hard limits (see docs/relay.md).
CONF="$CACHE/containers.conf"
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 20000 ] && NOFILE=20000
[ "$NPROC" = unlimited ] || [ "$NPROC" -gt 4096 ] && NPROC=4096
cat > "$CONF.new.$$" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
mv "$CONF.new.$$" "$CONF"
export CONTAINERS_CONF="$CONF"

source_uri() {
  # First "URIs:" of a deb822 source carrying suite $1, else a one-line "deb URI suite" entry.
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk -v s="$1" '
      /^$/ {u=""; ok=0}
      /^URIs:/ {u=$2}
      /^Suites:/ {for (i=2;i<=NF;i++) if ($i==s) ok=1}
      u!="" && ok {print u; exit}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk -v s="$1" '$1=="deb" && $3==s {print $2; exit}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
}

mirror() {
  local uri host_suite
  uri=$(source_uri "$SUITE")
  if [ -z "$uri" ]; then
    # shellcheck disable=SC1091
    host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    [ -n "$host_suite" ] && uri=$(source_uri "$host_suite")
    [ -n "$uri" ] && echo "debian-image: no apt source for $SUITE; using the archive of $host_suite's source" >&2
  fi
  [ -n "$uri" ] && { echo "$uri"; return; }
  echo "debian-image: no apt source for $SUITE in /etc/apt; cannot build the image" >&2
  exit 1
}

# A failed step names itself and the end of its log; the script's status says whether the image is there.
fail() { echo "debian-image: FAILED building $IMAGE: $*" >&2; [ -s "${LOG:-}" ] && tail -20 "$LOG" >&2; exit 1; }
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR
# Removes the unfinished root file system. It must not fail itself: under set -e a failed command in an EXIT
# trap replaced the script's status (a finished build exited 32 after printing its variables).
ROOT=""
cleanup() {
  [ -n "$ROOT" ] || return 0
  if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" 2>/dev/null || true; fi
  rm -rf "$ROOT" || true
}
on_exit() {
  local rc=$?
  cleanup
  exit "$rc"
}
trap on_exit EXIT

# Builds on this machine one at a time (two stages, or two people, may ask for images at once): one lock for
# all images, since builds of two names share the cache, the mirror and podman's storage; whoever waited finds
# the image there.
exec 8>"$CACHE/build.lock"
flock 8
if ! podman image exists "$IMAGE"; then
  TARBALL="$CACHE/rootfs-$KEY.tar"
  LOG="$CACHE/debootstrap-$SUITE-$KEY.log"
  if [ ! -s "$TARBALL" ]; then
    command -v debootstrap >/dev/null || { echo "debian-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
    ROOT=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    MIRROR=$(mirror)
    echo "debian-image: debootstrap $SUITE from the host's apt source" >&2
    # Base system first; the Python packages configure reliably only with apt in the finished chroot.
    DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
      "$SUITE" "$ROOT" "$MIRROR" >"$LOG" 2>&1 \
      || { tail -20 "$ROOT/debootstrap/debootstrap.log" >&2 2>/dev/null || true; fail "debootstrap $SUITE (log: $LOG)"; }
    echo "deb $MIRROR $SUITE main" > "$ROOT/etc/apt/sources.list"
    mount -t proc proc "$ROOT/proc"
    chroot "$ROOT" apt-get update >>"$LOG" 2>&1 || fail "apt-get update in the $SUITE chroot (log: $LOG)"
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y --no-install-recommends "${PACKAGES[@]}" \
      >>"$LOG" 2>&1 || fail "installing ${PACKAGES[*]} in the $SUITE chroot (log: $LOG)"
    umount "$ROOT/proc"
    rm -f "$ROOT/etc/apt/sources.list"  # the image never reaches a mirror
    # A container, not a machine: no getty, no udev settling, no time sync to wait for.
    chroot "$ROOT" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service \
      systemd-timesyncd.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
    if [ -n "$DISABLE_UNITS" ]; then
      # shellcheck disable=SC2086  # a list of unit names
      chroot "$ROOT" systemctl disable $DISABLE_UNITS >/dev/null 2>&1
    fi
    rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
    tar -C "$ROOT" --numeric-owner -cf "$TARBALL.new" .
    mv "$TARBALL.new" "$TARBALL"
    cleanup
    ROOT=""
  fi
  podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' "$TARBALL" "$IMAGE" >/dev/null \
    || fail "podman import of $TARBALL"
fi
podman image exists "$IMAGE" || fail "no image $IMAGE after the build"
echo "export CONTAINERS_CONF=$CONF"
echo "export $VAR=$IMAGE"
