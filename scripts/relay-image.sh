#!/usr/bin/env bash
# Build (once) the Debian 12 systemd image the relay role's molecule scenario runs on, and the podman
# configuration this kind of machine needs. Prints the variables to export (CONTAINERS_CONF, RELAY_IMAGE).
#
# Offline by design: every package the role needs is baked in with debootstrap --include, so the containers
# run with host networking and never reach a package mirror. The mirror is read from this machine's own apt
# sources at run time; the project never names a package host.
set -euo pipefail

CACHE=${RELAY_IMAGE_CACHE:-/var/cache/o365-smtp-oauth}
SUITE=bookworm
# What the role installs (tasks/install.yml) plus what molecule / ansible / the verify step need on the host.
PACKAGES=(
  systemd systemd-sysv dbus ca-certificates python3 python3-apt
  postfix python3-msal python3-aiosmtpd python3-requests python3-cryptography python3-jwt
  libsasl2-modules sasl2-bin python3-prometheus-client prometheus-postfix-exporter
  swaks libnet-ssleay-perl openssl procps iproute2
)
KEY=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
IMAGE=${RELAY_IMAGE:-localhost/o365-smtp-oauth-relay:debian12-$KEY}
mkdir -p "$CACHE"

# podman on a machine without systemd-managed cgroups and with tight hard limits (see docs/relay.md).
CONF="$CACHE/containers.conf"
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu)
[ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 20000 ] && NOFILE=20000
[ "$NPROC" = unlimited ] || [ "$NPROC" -gt 4096 ] && NPROC=4096
cat > "$CONF.new" <<CONF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
mv "$CONF.new" "$CONF"
export CONTAINERS_CONF="$CONF"

mirror() {
  # First "URIs:" of a deb822 source carrying the suite, else a one-line "deb URI suite" entry.
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk -v s="$SUITE" '
      /^$/ {u=""; ok=0}
      /^URIs:/ {u=$2}
      /^Suites:/ {for (i=2;i<=NF;i++) if ($i==s) ok=1}
      u!="" && ok {print u; exit}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk -v s="$SUITE" '$1=="deb" && $3==s {print $2; exit}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo "relay-image: no apt source for $SUITE in /etc/apt; cannot build the image" >&2
  exit 1
}

if ! podman image exists "$IMAGE"; then
  TARBALL="$CACHE/rootfs-$KEY.tar"
  if [ ! -s "$TARBALL" ]; then
    command -v debootstrap >/dev/null || { echo "relay-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
    ROOT=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$ROOT"' EXIT
    MIRROR=$(mirror)
    echo "relay-image: debootstrap $SUITE from the host's apt source" >&2
    # Base system first; the Python packages configure reliably only with apt in the finished chroot.
    DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
      "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" "$ROOT/debootstrap/debootstrap.log" >&2 2>/dev/null; exit 1; }
    echo "deb $MIRROR $SUITE main" > "$ROOT/etc/apt/sources.list"
    mount -t proc proc "$ROOT/proc"
    trap 'umount "$ROOT/proc" 2>/dev/null; rm -rf "$ROOT"; true' EXIT
    chroot "$ROOT" apt-get update >>"$CACHE/debootstrap.log" 2>&1
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y --no-install-recommends "${PACKAGES[@]}" \
      >>"$CACHE/debootstrap.log" 2>&1 || { tail -30 "$CACHE/debootstrap.log" >&2; exit 1; }
    umount "$ROOT/proc"
    rm -f "$ROOT/etc/apt/sources.list"  # the image never reaches a mirror
    # A container, not a machine: no getty, no udev settling, no time sync to wait for.
    chroot "$ROOT" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service \
      systemd-timesyncd.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
    # Baked in so the containers need no mirror, yet off as on a host without it: the role enables it when asked
    # (relay_postfix_exporter), and two relays sharing the host's network must not both take its port.
    chroot "$ROOT" systemctl disable prometheus-postfix-exporter.service >/dev/null 2>&1
    rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
    tar -C "$ROOT" --numeric-owner -cf "$TARBALL.new" .
    mv "$TARBALL.new" "$TARBALL"
  fi
  podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' "$TARBALL" "$IMAGE" >/dev/null
fi
echo "export CONTAINERS_CONF=$CONF"
echo "export RELAY_IMAGE=$IMAGE"
