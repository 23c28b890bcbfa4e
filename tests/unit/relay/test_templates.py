"""The role's templates rendered with Ansible's own templating and the role's defaults: the Postfix settings
that keep the relay closed and paced, and a proxy configuration the proxy program reads as intended."""

import json
import os

import pytest
from helpers.relay_role import NETWORKS_SCRIPT, ROLE, load_file, load_tasks, render, resolve, role_vars, template_value


def main_cf(**overrides):
    lines = [line for line in render("main.cf.j2", **overrides).splitlines() if "=" in line and line[0] != "#"]
    return dict((k.strip(), v.strip()) for k, v in (line.split("=", 1) for line in lines))


def test_never_an_open_relay_and_everything_goes_to_the_proxy():
    cf = main_cf(relay_allowed_networks=["192.0.2.0/24", "198.51.100.7/32"])
    assert cf["smtpd_relay_restrictions"] == "permit_mynetworks, reject_unauth_destination, reject"
    assert cf["relay_domains"] == ""
    assert cf["mynetworks"] == "192.0.2.0/24 198.51.100.7/32"
    # LMTP: the proxy answers for each recipient, so one refused recipient cannot hide behind the others' 250.
    # A unix socket only Postfix may open (the proxy's folder is group postfix): no local user bypasses Postfix.
    assert cf["default_transport"] == cf["relay_transport"] == "lmtp:unix:/run/o365-smtp-proxy/lmtp"
    assert cf["authorized_submit_users"] == "root"
    assert cf["lmtp_send_xforward_command"] == "yes"  # the proxy logs the client
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
    assert cf["maillog_file"] == "/var/log/o365-relay/postfix.log"
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
    proxy = load_file(os.path.join(ROLE, "files", "o365_smtp_proxy.py"), "o365_smtp_proxy")
    (tmp_path / "client_secret").write_text("the-secret\n")
    text = render("proxy.json.j2", relay_client_secret="the-secret", relay_upstream_port=2587)
    assert "the-secret" not in text
    path = tmp_path / "proxy.json"  # the role writes the secret beside it, named relatively in the JSON
    path.write_text(text)
    config = proxy.load_config(str(path))
    assert config["listen_socket"] == "/run/o365-smtp-proxy/lmtp"
    assert config["timeout"] == 60 and config["forward_deadline"] == 300 and config["lmtp_data_done_timeout"] == 360
    assert config["upstream_port"] == 2587 and config["mailbox"] == "relay@contoso.com"
    assert config["auth"]["client_secret"] == "the-secret"
    assert config["auth"]["tenant_id"] == "t" and config["auth"]["client_id"] == "c"
    assert json.loads(text)["certificate_path"] == ""


def test_smtp_smuggling_is_normalized_for_every_client():
    cf = main_cf(relay_allowed_networks=["192.0.2.0/24"])
    assert cf["smtpd_forbid_bare_newline"] == "normalize"
    # The default exclusions ($mynetworks) would exempt every device this relay serves.
    assert cf["smtpd_forbid_bare_newline_exclusions"] == ""


@pytest.mark.parametrize("deadline", [300, 900])
def test_postfix_waits_longer_for_the_proxy_than_the_proxy_may_take(deadline):
    cf = main_cf(relay_proxy_forward_deadline=deadline)
    assert cf["lmtp_data_done_timeout"] == "%ds" % (deadline + 60)
    config = json.loads(render("proxy.json.j2", relay_proxy_forward_deadline=deadline))
    assert config["forward_deadline"] == deadline and config["lmtp_data_done_timeout"] == deadline + 60


def test_the_unit_runs_the_current_release_in_the_sandbox_the_preflight_uses():
    unit = render("o365-smtp-proxy.service.j2")
    lines = unit.splitlines()
    assert "ExecStart=/usr/bin/python3 /opt/o365-smtp-proxy/current/o365_smtp_proxy.py --config " \
           "/opt/o365-smtp-proxy/current/conf/proxy.json" in lines
    sandbox = role_vars()["__relay_sandbox"]
    assert all(setting in lines for setting in sandbox)
    for wanted in ("ProtectProc=invisible", "ProcSubset=pid", "RemoveIPC=yes", "SystemCallFilter=~@privileged @resources",
                   "MemoryDenyWriteExecute=yes",
                   "ProtectHome=yes", "PrivateTmp=yes"):
        assert wanted in sandbox
    assert "Restart=always" in lines
    # The socket's folder is group postfix (setgid): RuntimeDirectory= would get the service's group back.
    assert ("ExecStartPre=+/usr/bin/install -d -o o365-smtp-proxy -g postfix -m 2750 /run/o365-smtp-proxy"
            in lines and "ReadWritePaths=/run/o365-smtp-proxy" in lines)
    assert not [line for line in lines if line.startswith("RuntimeDirectory")]


def run_networks(entries):
    """The script as the role runs it: JSON on stdin, (rc, stdout, stderr)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, NETWORKS_SCRIPT], input=json.dumps(entries), capture_output=True,
                          text=True, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("entries, why", [
    (["[::]/0"], "shorter than /32"),
    (["::/0"], "shorter than /32"),
    (["0.0.0.0/1", "128.0.0.0/1"], "shorter than /8"),
    (["0.0.0.0/0"], "shorter than /8"),
    (["192.0.2.7"], "not CIDR"),
    (["printers.lan/24"], "not CIDR"),
    (["192.0.2.7/24"], "host bits set: the network is 192.0.2.0/24"),
    (["::ffff:10.0.0.0/104"], "IPv4-mapped"),
    ([], "at least one"),
], ids=["v6-all-bracketed", "v6-all", "two-halves", "v4-all", "no-prefix", "name", "host-bits", "v4-mapped",
        "empty"])
def test_allowed_networks_that_would_open_the_relay_are_refused(entries, why):
    rc, out, err = run_networks(entries)
    assert rc == 1 and out == "" and why in err and "relay_allowed_networks" in err


def test_allowed_networks_in_postfix_notation():
    rc, out, _err = run_networks(["192.0.2.0/24", "2001:db8:0:0::/64", "[2001:db8:1::1]/128", "127.0.0.1/32"])
    assert rc == 0
    assert json.loads(out) == ["192.0.2.0/24", "[2001:db8::]/64", "[2001:db8:1::1]/128", "127.0.0.1/32"]
    cf = main_cf(relay_allowed_networks=["192.0.2.0/24", "2001:db8::/64"])
    assert cf["mynetworks"] == "192.0.2.0/24 [2001:db8::]/64"


def test_password_guessing_is_rate_limited_when_accounts_exist():
    cf = main_cf(relay_tls_cert_file="/etc/ssl/relay.pem", relay_tls_key_file="/etc/ssl/relay.key",
                 relay_sasl_users=[{"name": "printer", "password": "pw"}], relay_sasl_auth_rate_limit=7)
    assert cf["smtpd_client_auth_rate_limit"] == "7"
    assert "smtpd_client_auth_rate_limit" not in main_cf()


def test_postfix_log_is_rotated_and_old_ones_removed():
    service = render("maillog-rotate.service.j2", relay_maillog_file="/var/log/relay/postfix.log",
                     relay_maillog_keep_days=30).splitlines()
    assert "ExecStart=/usr/sbin/postfix logrotate" in service
    assert ("ExecStartPost=/usr/bin/find /var/log/relay -maxdepth 1 -name postfix.log.* -mtime +30 -delete"
            in service)
    assert "OnCalendar=daily" in render("maillog-rotate.timer.j2").splitlines()


def map_lines(text):
    return [line.split("\t") for line in text.splitlines() if line and line[0] != "#"]


def test_send_as_addresses_are_bound_to_their_clients():
    users = [{"name": "printer", "password": "pw"}, {"name": "scanner", "password": "pw",
                                                     "senders": ["Alerts@contoso.com", "scans@contoso.com"]}]
    bindings = [{"network": "192.0.2.0/24", "senders": ["alerts@contoso.com"]},
                {"network": "2001:db8::/64", "senders": ["ops@contoso.com"]}]
    values = dict(relay_allowed_senders=["alerts@contoso.com", "scans@contoso.com", "ops@contoso.com"],
                  relay_sasl_users=users, relay_sender_networks=bindings)
    logins = dict(map_lines(render("sender_logins.j2", **values)))
    # Owned by a login, or by declared networks only ("@networks" is no login name a device could have). A login
    # is named as Cyrus reports it to Postfix, with the relay's realm (molecule: "not owned by user scanner@relay2.test"
    # was the answer to the bare name).
    assert logins == {"alerts@contoso.com": "@networks", "scans@contoso.com": "scanner@relay.test",
                      "ops@contoso.com": "@networks"}
    users[1]["senders"] = ["alerts@contoso.com"]
    assert dict(map_lines(render("sender_logins.j2", **values)))["alerts@contoso.com"] == "scanner@relay.test"
    assert map_lines(render("sender_networks.j2", **values)) == [["192.0.2.0/24", "o365_senders_0"],
                                                                 ["2001:db8::/64", "o365_senders_1"]]
    assert map_lines(render("network_senders.j2", __relay_binding=bindings[1])) == [["ops@contoso.com", "OK"]]
    cf = main_cf(**values)
    assert cf["smtpd_sender_login_maps"] == "texthash:/etc/postfix/o365_sender_logins"
    assert cf["smtpd_restriction_classes"] == "o365_senders_0, o365_senders_1"
    assert cf["o365_senders_1"] == "check_sender_access texthash:/etc/postfix/o365_senders_1"
    assert cf["smtpd_sender_restrictions"] == ("check_client_access cidr:/etc/postfix/o365_sender_networks, "
                                               "reject_known_sender_login_mismatch, permit")


def test_the_proxy_binds_from_and_sender_headers_to_the_same_clients_as_the_envelope(tmp_path):
    # Addresses as written in relay_allowed_senders (validate.yml: the senders lists name them exactly).
    users = [{"name": "Printer", "password": "pw", "senders": ["Alerts@contoso.com"]},
             {"name": "scanner", "password": "pw", "senders": ["scans@contoso.com", "Alerts@contoso.com"]},
             {"name": "nobody", "password": "pw"}]
    networks = [{"network": "192.0.2.0/24", "senders": ["Alerts@contoso.com"]},
                {"network": "[2001:db8::]/64", "senders": ["ops@contoso.com"]}]
    values = dict(relay_allowed_senders=["Alerts@contoso.com", "scans@contoso.com", "ops@contoso.com"],
                  relay_sasl_users=users, relay_sender_networks=networks)
    text = render("proxy.json.j2", **values)
    # Logins as Cyrus names them in Postfix's Received header (realm relay_hostname), all lower case as the proxy
    # compares them; networks as declared (the proxy reads Postfix's [v6]/len form).
    assert json.loads(text)["sender_bindings"] == {
        "alerts@contoso.com": {"logins": ["printer@relay.test", "scanner@relay.test"], "networks": ["192.0.2.0/24"]},
        "scans@contoso.com": {"logins": ["scanner@relay.test"], "networks": []},
        "ops@contoso.com": {"logins": [], "networks": ["[2001:db8::]/64"]}}
    proxy = load_file(os.path.join(ROLE, "files", "o365_smtp_proxy.py"), "o365_smtp_proxy")
    path = tmp_path / "proxy.json"
    path.write_text(text)
    bindings = proxy.SenderBindings(proxy.load_config(str(path))["sender_bindings"])
    logins, nets = bindings.owners["alerts@contoso.com"]
    assert logins == {"printer@relay.test", "scanner@relay.test"} and [str(n) for n in nets] == ["192.0.2.0/24"]
    assert [str(n) for n in bindings.owners["ops@contoso.com"][1]] == ["2001:db8::/64"]
    # Postfix names the login in its Received header only when told to; without accounts there is none.
    assert main_cf(**values)["smtpd_sasl_authenticated_header"] == "yes"
    assert "smtpd_sasl_authenticated_header" not in main_cf()
    assert json.loads(render("proxy.json.j2"))["sender_bindings"] == {}


def test_sending_budgets_per_login_reach_the_proxy(tmp_path):
    # Defaults: one login may spend a fifth of the mailbox's 10,000 recipients a day.
    assert json.loads(render("proxy.json.j2"))["client_limits"] == {
        "messages_per_hour": 200, "messages_per_day": 1000, "recipients_per_hour": 500, "recipients_per_day": 2000}
    text = render("proxy.json.j2", relay_login_message_limit={"day": 0}, relay_login_recipient_limit={"hour": 60})
    # A key left out keeps its default (argument_specs defaults are not applied to a dict given in part).
    assert json.loads(text)["client_limits"] == {
        "messages_per_hour": 200, "messages_per_day": 0, "recipients_per_hour": 60, "recipients_per_day": 2000}
    proxy = load_file(os.path.join(ROLE, "files", "o365_smtp_proxy.py"), "o365_smtp_proxy")
    path = tmp_path / "proxy.json"
    path.write_text(text)
    assert proxy.load_config(str(path))["client_limits"]["recipients_per_hour"] == 60


def test_without_sender_networks_owned_addresses_are_for_their_logins_only():
    cf = main_cf(relay_allowed_senders=["alerts@contoso.com"],
                 relay_sasl_users=[{"name": "scanner", "password": "pw", "senders": ["alerts@contoso.com"]}])
    assert cf["smtpd_sender_restrictions"] == "reject_known_sender_login_mismatch, permit"
    assert "smtpd_restriction_classes" not in cf


def test_proxy_configuration_names_the_metrics_endpoint_and_the_secrets_end_date():
    config = json.loads(render("proxy.json.j2", relay_metrics_listen="192.0.2.10:9476",
                               relay_credential_expires="2027-06-30T00:00:00Z"))
    assert config["metrics_listen"] == "192.0.2.10:9476"
    assert config["credential_expires"] == "2027-06-30T00:00:00Z"
    assert json.loads(render("proxy.json.j2"))["metrics_listen"] == "127.0.0.1:9476"  # loopback unless exposed
    # Its library is installed only when metrics are on; the exporter only when asked for.
    assert resolve("__relay_watch_packages", relay_metrics_listen="") == []
    assert resolve("__relay_watch_packages", relay_postfix_exporter=True) == ["python3-prometheus-client",
                                                                              "prometheus-postfix-exporter"]


@pytest.mark.parametrize("deadline", [300, 900])
def test_systemd_waits_for_the_forwards_in_flight_and_never_gives_up_restarting(deadline):
    unit = render("o365-smtp-proxy.service.j2", relay_proxy_forward_deadline=deadline)
    sections = dict((name, body.splitlines()) for name, body in
                    (part.split("]", 1) for part in unit.split("\n[")[1:]))
    stop = [line.split("=", 1)[1] for line in sections["Service"] if line.startswith("TimeoutStopSec=")]
    # SIGTERM drains for as long as Postfix waits for an answer (the proxy's grace): a kill before the answer of
    # a forward Exchange may have accepted makes a duplicate. Longer than both, from the same variable.
    config = json.loads(render("proxy.json.j2", relay_proxy_forward_deadline=deadline))
    assert config["forward_deadline"] == deadline and config["lmtp_data_done_timeout"] == deadline + 60
    assert stop == ["%ds" % (deadline + 90)]
    # The default start limit (5 starts in 10 s) left the proxy dead after quick crashes: unlimited, spaced.
    assert "StartLimitIntervalSec=0" in sections["Unit"]
    assert "Restart=always" in sections["Service"] and "RestartSec=2" in sections["Service"]


def test_per_client_rate_limits_apply_to_the_allowed_networks_too():
    cf = main_cf(relay_allowed_networks=["192.0.2.0/24"])
    # A burst limit at the door (Exchange takes 30 messages a minute); the daily quota is the proxy's budgets' job.
    assert cf["smtpd_client_message_rate_limit"] == "30" and cf["smtpd_client_recipient_rate_limit"] == "100"
    # Postfix's default exceptions are $mynetworks: exactly the devices that would spend the quota.
    assert cf["smtpd_client_event_limit_exceptions"] == ""
    cf = main_cf(relay_client_message_rate_limit=0, relay_client_recipient_rate_limit=7)
    assert cf["smtpd_client_message_rate_limit"] == "0" and cf["smtpd_client_recipient_rate_limit"] == "7"


def test_unauthorized_pipelining_is_refused():
    assert main_cf()["smtpd_data_restrictions"] == "reject_unauth_pipelining"


@pytest.mark.parametrize("listen, protocols, networks", [
    (["all"], "all", ""),
    (["192.0.2.1", "127.0.0.1"], "all", ""),
    (["127.0.0.1"], "all", "127.0.0.0/8 [::1]/128"),
    (["loopback-only"], "ipv4", "127.0.0.0/8"),
], ids=["all-interfaces", "lan-and-loopback", "loopback", "loopback-only-v4"])
def test_no_network_relays_by_default_loopback_only_when_postfix_listens_on_loopback_only(listen, protocols,
                                                                                          networks):
    # Loopback with inet_interfaces = all let every local account on the host relay.
    assert role_vars()["relay_allowed_networks"] == []
    cf = main_cf(relay_listen_addresses=listen, relay_inet_protocols=protocols)
    assert cf["mynetworks"] == networks
    assert main_cf(relay_listen_addresses=listen, relay_allowed_networks=["192.0.2.0/24"])["mynetworks"] == \
        "192.0.2.0/24"


def test_nobody_by_address_needs_logins_else_the_role_stops():
    rc, _out, err = run_networks([])
    assert rc == 1 and "relay_sasl_users" in err and "relay_allowed_networks" in err
    validate = load_tasks("validate.yml")
    parse = next(task for task in validate if task["name"].startswith("Parse relay_allowed_networks"))
    argv = parse["ansible.builtin.command"]["argv"]
    where = dict(ansible_playbook_python="python3", role_path=ROLE)
    assert template_value(argv, relay_sasl_users=[{"name": "p", "password": "x"}], **where)[-1] == "--allow-empty"
    assert "--allow-empty" not in template_value(argv, **where)


def test_the_postfix_log_is_kept_from_other_local_users():
    folder = "/var/log/o365-relay"
    assert role_vars()["relay_maillog_file"] == folder + "/postfix.log"
    assert main_cf()["maillog_file"] == folder + "/postfix.log"
    tasks = load_tasks("postfix.yml")
    task = next(t for t in tasks if t.get("ansible.builtin.file", {}).get("state") == "directory"
                and "relay_maillog_file" in t["ansible.builtin.file"]["path"])
    assert task["ansible.builtin.file"]["mode"] == "0750" and task["ansible.builtin.file"]["owner"] == "root"
    assert resolve("__relay_maillog_group") == "adm"
    assert resolve("__relay_maillog_group", relay_postfix_exporter=True) == "prometheus"
