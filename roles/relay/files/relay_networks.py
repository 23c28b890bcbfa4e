# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""relay_allowed_networks, parsed: run on the controller by the role (tasks/validate.yml).

Reads a JSON list on stdin (empty only with --allow-empty); prints the networks in Postfix's mynetworks notation (IPv6 in brackets) as a JSON
list, or exits 1 naming each bad entry and why on stderr. Only CIDR with an explicit prefix, host bits zero,
and no prefix shorter than MIN_PREFIX: a string comparison let "[::]/0" or "0.0.0.0/1" + "128.0.0.0/1" pass,
which make an open relay.
"""

from __future__ import absolute_import, division, print_function

import ipaddress
import json
import sys

MIN_PREFIX = {4: 8, 6: 32}


def parse(entry):
    """(Postfix notation, None) or (None, why not)."""
    if not isinstance(entry, str) or "/" not in entry:
        return None, "not CIDR: give address/prefix (one host: /32 or /128)"
    text = entry.strip()
    address, prefix = text.rsplit("/", 1)
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    try:
        network = ipaddress.ip_network("%s/%s" % (address, prefix), strict=False)
    except ValueError as exc:
        return None, "not CIDR: %s" % exc
    if network.network_address != ipaddress.ip_address(address):
        return None, "host bits set: the network is %s" % network
    if network.version == 6 and network.network_address.ipv4_mapped is not None:
        return None, "an IPv4-mapped IPv6 network: give the IPv4 network"
    if network.prefixlen < MIN_PREFIX[network.version]:
        return None, "prefix /%d is shorter than /%d: too wide for a relay (an open relay at /0)" % (
            network.prefixlen, MIN_PREFIX[network.version])
    if network.version == 6:
        return "[%s]/%d" % (network.network_address.compressed, network.prefixlen), None
    return network.with_prefixlen, None


def main():
    try:
        entries = json.load(sys.stdin)
    except ValueError as exc:
        print("relay_allowed_networks: not a list: %s" % exc, file=sys.stderr)
        return 1
    if not isinstance(entries, list) or (not entries and "--allow-empty" not in sys.argv[1:]):
        print("relay_allowed_networks: give at least one client network, or relay_sasl_users (empty means loopback "
              "only when relay_listen_addresses are loopback only)", file=sys.stderr)
        return 1
    good, bad = [], []
    for entry in entries:
        postfix, why = parse(entry)
        if why:
            bad.append("%r: %s" % (entry, why))
        else:
            good.append(postfix)
    if bad:
        print("relay_allowed_networks: " + "; ".join(bad), file=sys.stderr)
        return 1
    print(json.dumps(good))
    return 0


if __name__ == "__main__":
    sys.exit(main())
