"""The role's templates rendered with Ansible's own templating and the role's defaults: the Postfix settings
that keep the relay closed and paced, and a proxy configuration the proxy program reads as intended."""

import importlib.util
import json
import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "relay")


def role_vars(**overrides):
    values = {}
    for name in ("defaults/main.yml", "vars/main.yml"):
        with open(os.path.join(ROLE, name)) as handle:
            # Role files are trusted templates in Ansible too (a value may refer to another variable).
            values.update((k, trust_as_template(v) if isinstance(v, str) else v)
                          for k, v in yaml.safe_load(handle).items())
    values.update(relay_mailbox="relay@contoso.com", relay_tenant_id="t", relay_client_id="c",
                  relay_hostname="relay.test", ansible_managed="managed", inventory_hostname="relay.test")
    values.update(overrides)
    return values


def render(template, **overrides):
    with open(os.path.join(ROLE, "templates", template)) as handle:
        source = handle.read()
    return Templar(loader=DataLoader(), variables=role_vars(**overrides)).template(trust_as_template(source))


def main_cf(**overrides):
    lines = [line for line in render("main.cf.j2", **overrides).splitlines() if "=" in line and line[0] != "#"]
    return dict((k.strip(), v.strip()) for k, v in (line.split("=", 1) for line in lines))


def test_never_an_open_relay_and_everything_goes_to_the_proxy():
    cf = main_cf(relay_allowed_networks=["192.0.2.0/24", "198.51.100.7/32"], relay_proxy_port=10600)
    assert cf["smtpd_relay_restrictions"] == "permit_mynetworks, reject_unauth_destination, reject"
    assert cf["relay_domains"] == ""
    assert cf["mynetworks"] == "192.0.2.0/24 198.51.100.7/32"
    # LMTP: the proxy answers for each recipient, so one refused recipient cannot hide behind the others' 250.
    assert cf["default_transport"] == cf["relay_transport"] == "lmtp:inet:127.0.0.1:10600"
    assert "relayhost" not in cf
    services = [line.split() for line in render("master.cf.j2").splitlines() if line and line[0] != "#"]
    assert ["lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"] in services
    assert cf["mydestination"] == "" and cf["local_transport"].startswith("error:")


@pytest.mark.parametrize("per_minute, delay", [(30, "2s"), (20, "3s"), (7, "9s"), (0, "0s")])
def test_the_rate_limit_becomes_a_delay_between_deliveries(per_minute, delay):
    assert main_cf(relay_rate_per_minute=per_minute)["default_destination_rate_delay"] == delay


def test_limits_and_log_file():
    cf = main_cf(relay_message_size_limit=1000, relay_queue_lifetime="2d")
    assert cf["message_size_limit"] == "1000"
    assert cf["maximal_queue_lifetime"] == "2d" and cf["bounce_queue_lifetime"] == "2d"
    assert cf["maillog_file"] == "/var/log/postfix.log"
    assert cf["sender_canonical_maps"] == "regexp:/etc/postfix/o365_sender_canonical"


def test_listener_tls_only_with_a_certificate():
    assert main_cf()["smtpd_tls_security_level"] == "none"
    cf = main_cf(relay_tls_cert_file="/etc/ssl/relay.pem", relay_tls_key_file="/etc/ssl/relay.key")
    assert cf["smtpd_tls_security_level"] == "may" and cf["smtpd_tls_cert_file"] == "/etc/ssl/relay.pem"


def test_no_smtp_auth_unless_accounts_are_declared():
    cf = main_cf()
    assert cf["smtpd_sasl_auth_enable"] == "no"
    assert "permit_sasl_authenticated" not in cf["smtpd_relay_restrictions"]


def test_smtp_auth_for_declared_accounts_only_after_starttls():
    cf = main_cf(relay_tls_cert_file="/etc/ssl/relay.pem", relay_tls_key_file="/etc/ssl/relay.key",
                 relay_sasl_users=[{"name": "printer", "password": "pw"}])
    assert cf["smtpd_sasl_auth_enable"] == "yes" and cf["smtpd_tls_auth_only"] == "yes"
    assert cf["smtpd_relay_restrictions"] == ("permit_mynetworks, permit_sasl_authenticated, "
                                              "reject_unauth_destination, reject")
    assert cf["smtpd_sasl_security_options"] == "noanonymous"
    assert cf["local_header_rewrite_clients"] == "permit_mynetworks, permit_sasl_authenticated"
    conf = dict(line.split(": ", 1) for line in render("sasl_smtpd.conf.j2").splitlines() if ": " in line
                and line[0] != "#")
    assert conf == {"pwcheck_method": "auxprop", "auxprop_plugin": "sasldb", "mech_list": "PLAIN LOGIN",
                    "sasldb_path": "/etc/postfix/sasl/sasldb2"}
    assert "pw" not in render("main.cf.j2", relay_sasl_users=[{"name": "printer", "password": "pw"}]).split()


def test_sender_map_keeps_allowed_senders_and_rewrites_the_rest():
    import re
    text = render("sender_canonical.j2", relay_allowed_senders=["alerts+x@contoso.com"])
    rules = [line.split("\t") for line in text.splitlines() if line.startswith("/")]

    def rewrite(address):
        for pattern, target in rules:
            if re.search(pattern.strip("/"), address):
                return target
    assert rewrite("alerts+x@contoso.com") == "alerts+x@contoso.com"
    assert rewrite("alertsxx@contoso.com") == "relay@contoso.com"
    assert rewrite("printer@lan") == "relay@contoso.com"


def test_proxy_configuration_is_what_the_proxy_reads(tmp_path):
    spec = importlib.util.spec_from_file_location("o365_smtp_proxy", os.path.join(ROLE, "files", "o365_smtp_proxy.py"))
    proxy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(proxy)
    secret = tmp_path / "secret"
    secret.write_text("the-secret\n")
    text = render("proxy.json.j2", relay_client_secret="the-secret", __relay_secret_file=str(secret),
                  relay_upstream_port=2587, relay_proxy_port=10600)
    assert "the-secret" not in text
    path = tmp_path / "proxy.json"
    path.write_text(text)
    config = proxy.load_config(str(path))
    assert config["listen_host"] == "127.0.0.1" and config["listen_port"] == 10600
    assert config["upstream_port"] == 2587 and config["mailbox"] == "relay@contoso.com"
    assert config["auth"]["client_secret"] == "the-secret"
    assert config["auth"]["tenant_id"] == "t" and config["auth"]["client_id"] == "c"
    assert json.loads(text)["certificate_path"] == ""
