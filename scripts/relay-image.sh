#!/usr/bin/env bash
# Build (once) the Debian 12 and Debian 13 systemd images the relay role's molecule scenario runs on (relay1 on
# bookworm, relay2 on trixie), and the podman configuration this kind of machine needs (scripts/debian-image.sh).
# Prints the variables to export (CONTAINERS_CONF, RELAY_IMAGE, RELAY_IMAGE_TRIXIE).
#
# Offline by design: every package the role needs is baked in with debootstrap --include, so the containers
# run with host networking and never reach a package mirror. The mirror is read from this machine's own apt
# sources at run time; the project never names a package host.
set -euo pipefail
# What the role installs (tasks/install.yml) plus what molecule / ansible / the verify step need on the host
# (swaks and its TLS library are the tests' client, never installed by the role). The same names on both releases.
PACKAGES=(
  systemd systemd-sysv dbus ca-certificates python3 python3-apt
  postfix python3-msal python3-aiosmtpd python3-requests python3-cryptography python3-jwt
  libsasl2-modules sasl2-bin python3-prometheus-client prometheus-postfix-exporter
  swaks libnet-ssleay-perl openssl procps iproute2
)
# Baked in so the containers need no mirror, yet off as on a host without it: the role enables it when asked
# (relay_postfix_exporter), and two relays sharing the host's network must not both take its port.
export DEBIAN_IMAGE_DISABLE_UNITS="prometheus-postfix-exporter.service"
bash "$(dirname "$0")/debian-image.sh" bookworm localhost/o365-smtp-oauth-relay RELAY_IMAGE "${PACKAGES[@]}"
bash "$(dirname "$0")/debian-image.sh" trixie localhost/o365-smtp-oauth-relay RELAY_IMAGE_TRIXIE "${PACKAGES[@]}" \
  | grep -v '^export CONTAINERS_CONF='
