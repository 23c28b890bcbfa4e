"""The proxy's Prometheus endpoint, scraped over HTTP while the proxy forwards to the emulated Exchange SMTP endpoint
(tests/emulator/smtp_server.py): each counter moves as the message's fate says, and no label holds an address."""

import datetime
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_proxy import APP, GRAPH, MAILBOX, proxy


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Scraper(object):
    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/metrics" % port

    def samples(self):
        with urllib.request.urlopen(self.url, timeout=10) as answer:
            text = answer.read().decode()
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def value(self, name, **labels):
        return self.samples().get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered(run_proxy):
    def start(**extra):
        port = free_port()
        running = run_proxy(metrics_listen="127.0.0.1:%d" % port, **extra)
        return running, Scraper(port)
    return start


def test_a_delivered_message_and_a_bounced_recipient_are_counted(metered, upstream):
    running, scrape = metered()
    assert scrape.value("o365_smtp_proxy_messages_total", outcome="delivered") == 0  # the series exist at 0
    assert running.send(sender=MAILBOX)[0] == 250
    upstream.settings.refuse_recipients = {"ghost@example.com"}  # 550 5.1.10 RESOLVER.ADR.RecipientNotFound
    running.send(sender=MAILBOX, rcpts=("bob@example.com", "ghost@example.com"))
    assert [code for code, _text in running.replies] == [250, 550]
    assert scrape.value("o365_smtp_proxy_messages_total", outcome="delivered") == 1
    assert scrape.value("o365_smtp_proxy_messages_total", outcome="partial") == 1
    assert scrape.value("o365_smtp_proxy_recipients_total", outcome="delivered", code="250", status_class="2.0") == 2
    assert scrape.value("o365_smtp_proxy_recipients_total", outcome="bounced", code="550", status_class="5.1") == 1
    assert scrape.value("o365_smtp_proxy_upstream_forward_seconds_count") == 2
    assert scrape.value("o365_smtp_proxy_worker_wait_seconds_count") == 2
    assert scrape.value("o365_smtp_proxy_upstream_connections_total", event="opened") == 1  # reused
    assert scrape.value("o365_smtp_proxy_messages_in_flight") == 0
    # An access token given as it is: no request to the token endpoint, yet its expiry is known.
    assert 0 < scrape.value("o365_smtp_proxy_token_remaining_seconds") <= 3600
    for (_name, labels), _value in scrape.samples().items():
        assert not any("@" in value for _label, value in labels), labels


def test_an_upstream_refusing_authentication_is_a_deferral_with_its_57_class(metered, upstream):
    running, scrape = metered()
    upstream.faults.add("AUTH", "reply", status=535)  # once: 535 5.7.3 Authentication unsuccessful
    assert running.send(sender=MAILBOX)[0] == 451
    assert scrape.value("o365_smtp_proxy_messages_total", outcome="deferred") == 1
    assert scrape.value("o365_smtp_proxy_recipients_total", outcome="deferred", code="451", status_class="4.7") == 1


def test_an_upstream_outage_counts_the_lost_connection_and_the_deferral(metered, own_upstream):
    running, scrape = metered(server=own_upstream)
    assert running.send(sender=MAILBOX)[0] == 250
    own_upstream.stop()
    assert running.send(sender=MAILBOX)[0] == 451
    assert scrape.value("o365_smtp_proxy_upstream_connections_total", event="lost") >= 1
    assert scrape.value("o365_smtp_proxy_messages_total", outcome="deferred") == 1


def test_token_requests_are_counted_by_result_and_aadsts_code():
    metrics = proxy.Metrics()

    class Refused(Exception):
        code = "AADSTS7000222"

    metrics.token_failed(Refused("expired"))
    metrics.token_failed(ValueError("no code"))
    metrics.token_acquired(2000000000)
    families = dict((f.name, f) for f in text_string_to_metric_families(
        __import__("prometheus_client").generate_latest(metrics.registry).decode()))
    requests = dict((tuple(sorted(s.labels.items())), s.value) for s in families[
        "o365_smtp_proxy_token_requests"].samples if s.name.endswith("_total"))
    assert requests[(("code", "AADSTS7000222"), ("result", "failed"))] == 1
    assert requests[(("code", "other"), ("result", "failed"))] == 1
    assert requests[(("code", ""), ("result", "ok"))] == 1


def test_the_credential_expiry_is_the_certificate_notafter_or_the_declared_date(tmp_path):
    from emulator.certs import ClientCertificate

    cert = ClientCertificate("relay-test", days=30)
    path = cert.write(str(tmp_path / "relay.pem"))
    config = {"auth": {"certificate_path": path}, "credential_expires": ""}
    expected = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    assert abs(proxy.credential_expiry(config) - expected.timestamp()) < 3 * 86400
    config = {"auth": {}, "credential_expires": "2027-06-30T00:00:00Z"}
    assert proxy.credential_expiry(config) == datetime.datetime(2027, 6, 30, tzinfo=datetime.timezone.utc).timestamp()
    assert proxy.credential_expiry({"auth": {}, "credential_expires": ""}) is None


def test_metrics_listen_must_be_host_and_port(tmp_path):
    import json

    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"mailbox": MAILBOX, "metrics_listen": "9476"}))
    with pytest.raises(proxy.ConfigProblem, match="metrics_listen: want host:port"):
        proxy.load_config(str(path))


def test_metrics_off_means_nothing_is_counted_and_nothing_listens():
    metrics = proxy.start_metrics({"metrics_listen": "", "auth": {}, "credential_expires": ""})
    assert isinstance(metrics, proxy.NoMetrics) and not metrics.enabled


def test_wrong_token_is_a_failed_token_request(metered, upstream):
    running, scrape = metered(token=upstream.app_token(APP, audience=GRAPH))
    assert running.send(sender=MAILBOX)[0] == 451
    assert scrape.value("o365_smtp_proxy_messages_total", outcome="deferred") == 1
    assert scrape.value("o365_smtp_proxy_token_requests_total", result="failed", code="other") == 1


def test_open_connections_to_the_endpoint_cannot_exhaust_the_units_tasks():
    # The unit's TasksMax is 64 (roles/relay/vars/main.yml): one thread per connection, as the library's own server
    # does, let 64 idle connections stop the proxy from starting any thread.
    import threading
    import time

    from o365_smtp_proxy_metrics import Metrics

    metrics = Metrics()
    port = free_port()
    server = metrics.start("127.0.0.1", port)
    before = threading.active_count()
    idle = []
    while len(idle) < 80:
        idle.append(socket.create_connection(("127.0.0.1", port)))
    try:
        time.sleep(0.5)
        assert threading.active_count() - before <= 2, "threads grew with connections"
        # Beyond the workers and a short backlog, connections are closed at once: each gets the same 2 s to be
        # closed, waited for together (one by one, the held ones cost 2 s each).
        import select
        closed, waiting, deadline = 0, list(idle), time.monotonic() + 2
        while waiting and time.monotonic() < deadline:
            readable = select.select(waiting, [], [], max(0, deadline - time.monotonic()))[0]
            for conn in readable:
                waiting.remove(conn)
                closed += conn.recv(1) == b""
        assert closed >= 80 - 2 - 8
    finally:
        for conn in idle:
            conn.close()
    # The workers are free again: a scrape answers.
    deadline = time.monotonic() + 15
    while True:
        try:
            assert ("o365_smtp_proxy_start_time_seconds", ()) in Scraper(port).samples()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    server.shutdown()
    server.server_close()
