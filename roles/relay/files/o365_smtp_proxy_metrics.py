# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics of the relay's submission proxy (prometheus_client: Debian's python3-prometheus-client).

Names follow Prometheus conventions: `o365_smtp_proxy_*`, counters end in `_total`, times in seconds. No label holds
an address, a queue id or any other unbounded value: outcomes, reply codes and AADSTS codes only.

Postfix's own figures (queue sizes, rejected clients, SASL failures) come from Debian's prometheus-postfix-exporter,
not from here. The per-mailbox rate limit is Postfix's (default_destination_rate_delay): that wait shows in the
exporter's delivery delay (stage "qmgr"); the wait here is for a free upstream connection.
"""

from __future__ import absolute_import, division, print_function

import queue
import re
import socket
import threading
import time
from http.server import HTTPServer

PREFIX = "o365_smtp_proxy_"
_ENHANCED = re.compile(r"^\d{3}[ -]([245])\.(\d{1,3})\.\d{1,3}\b")
_AADSTS = re.compile(r"^AADSTS\d{2,7}$")
# Forward latency buckets: one reply on a quiet day is ~0.3 s; a forward near the deadline takes minutes.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
# The endpoint's threads are counted against the unit's TasksMax (64) with the proxy's own: a fixed few, started
# once; connections beyond what they and a short backlog hold are closed at once, an idle one after a while.
SCRAPE_WORKERS = 2
SCRAPE_BACKLOG = 8
SCRAPE_TIMEOUT = 10


class BoundedHTTPServer(HTTPServer):
    """An HTTP server with a fixed pool of worker threads (the library's starts a thread per connection, so
    enough open connections to the endpoint exhausted TasksMax and the proxy could start no more threads)."""

    def __init__(self, address, handler, workers=SCRAPE_WORKERS, backlog=SCRAPE_BACKLOG):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        HTTPServer.__init__(self, address, handler)
        self.waiting = queue.Queue(maxsize=backlog)
        self.workers = [threading.Thread(target=self._work, name="metrics-%d" % n, daemon=True)
                        for n in range(workers)]
        for worker in self.workers:
            worker.start()

    def process_request(self, request, client_address):
        try:
            self.waiting.put_nowait((request, client_address))
        except queue.Full:
            self.shutdown_request(request)  # over the cap: closed, no thread spent on it

    def _work(self):
        while True:
            request, client_address = self.waiting.get()
            try:
                self.finish_request(request, client_address)
            except Exception:  # one broken scrape must not end the worker
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a scraper that went away is not the proxy's error


def reply_class(reply):
    """'550 5.1.10 ...' -> ('550', '5.1'); an enhanced code's class and subject (bounded), else ('550', '')."""
    reply = reply or ""
    code = reply[:3] if reply[:3].isdigit() else "000"
    match = _ENHANCED.match(reply)
    return code, ("%s.%s" % match.groups() if match else "")


def outcome_of(reply):
    """What Postfix does with a recipient given this LMTP reply."""
    return {"2": "delivered", "4": "deferred", "5": "bounced"}.get((reply or "4")[:1], "deferred")


def message_outcome(outcomes):
    """One word for a message: every recipient alike, or "partial"."""
    kinds = set(outcomes)
    return kinds.pop() if len(kinds) == 1 else "partial"


def token_error_code(exc):
    """AADSTS code of a token failure (bounded: Microsoft's list), else the error's class name."""
    code = str(getattr(exc, "code", None) or "")
    return code if _AADSTS.match(code) else "other"


class NoMetrics(object):
    """What the proxy calls when metrics are off: nothing is counted, nothing listens."""

    enabled = False

    def start(self, host, port):
        return None

    def message(self, replies):
        pass

    def forward(self, seconds):
        pass

    def worker_wait(self, seconds):
        pass

    def in_flight(self, delta):
        pass

    def token_acquired(self, expires_on):
        pass

    def token_failed(self, exc):
        pass

    def token_seen(self, expires_on):
        pass

    def connection(self, event):
        pass

    def credential_expiry(self, timestamp):
        pass


class Metrics(NoMetrics):
    """The proxy's metrics in a registry of their own (no process/platform collectors of the library's default
    registry: those are the node exporter's job)."""

    enabled = True

    def __init__(self, clock=time.time):
        import prometheus_client as prom  # Debian's python3-prometheus-client; only when metrics are on

        self._prom = prom
        self._clock = clock
        self._token_expires_on = None
        self.registry = reg = prom.CollectorRegistry(auto_describe=True)
        self.messages = prom.Counter(PREFIX + "messages_total", "Messages Postfix handed to the proxy, by outcome "
                                     "(delivered, deferred, bounced; partial: recipients differ).",
                                     ["outcome"], registry=reg)
        self.recipients = prom.Counter(PREFIX + "recipients_total", "Recipients by outcome and by the reply "
                                       "Postfix got (code and enhanced status class, e.g. 550 and 5.1).",
                                       ["outcome", "code", "status_class"], registry=reg)
        self.tokens = prom.Counter(PREFIX + "token_requests_total", "Token requests to Entra ID by result "
                                   "(ok, failed) and AADSTS code of a failure.", ["result", "code"], registry=reg)
        self.token_expiry = prom.Gauge(PREFIX + "token_remaining_seconds", "Seconds until the current access "
                                       "token expires (negative: expired; absent before the first token).",
                                       registry=reg)
        self.token_expiry.set_function(self._token_remaining)
        self.connections = prom.Counter(PREFIX + "upstream_connections_total", "Upstream SMTP connections by "
                                        "event: opened, or lost (closed by the peer or the network).",
                                        ["event"], registry=reg)
        self.latency = prom.Histogram(PREFIX + "upstream_forward_seconds", "Time to forward one message "
                                      "upstream (token, connection, commands, data).", buckets=LATENCY_BUCKETS,
                                      registry=reg)
        self.wait = prom.Histogram(PREFIX + "worker_wait_seconds", "Time a message waited for a free upstream "
                                   "connection.", buckets=LATENCY_BUCKETS, registry=reg)
        self.flight = prom.Gauge(PREFIX + "messages_in_flight", "Messages being forwarded now.", registry=reg)
        self.credential = prom.Gauge(PREFIX + "credential_expiry_timestamp_seconds", "When the relay's "
                                     "credential expires (certificate notAfter, or the secret's declared end "
                                     "date), Unix time.", registry=reg)
        self.started = prom.Gauge(PREFIX + "start_time_seconds", "When the proxy started, Unix time.", registry=reg)
        self.started.set(clock())
        # Every series exists from the start at 0: rate() and absent-vs-zero alerts need no first event.
        for outcome in ("delivered", "deferred", "bounced", "partial"):
            self.messages.labels(outcome)
        self.tokens.labels("ok", "")
        for event in ("opened", "lost"):
            self.connections.labels(event)

    def start(self, host, port):
        """Serve /metrics on host:port: one accepting thread and a fixed pool (BoundedHTTPServer)."""
        from prometheus_client.exposition import MetricsHandler

        handler = type("ScrapeHandler", (MetricsHandler.factory(self.registry),), {"timeout": SCRAPE_TIMEOUT})
        self.server = BoundedHTTPServer((host, int(port)), handler)
        threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True).start()
        return self.server

    def _token_remaining(self):
        if self._token_expires_on is None:
            return float("nan")
        return self._token_expires_on - self._clock()

    def message(self, replies):
        outcomes = []
        for reply in replies:
            outcome = outcome_of(reply)
            outcomes.append(outcome)
            code, status_class = reply_class(reply)
            self.recipients.labels(outcome, code, status_class).inc()
        if outcomes:
            self.messages.labels(message_outcome(outcomes)).inc()

    def forward(self, seconds):
        self.latency.observe(seconds)

    def worker_wait(self, seconds):
        self.wait.observe(seconds)

    def in_flight(self, delta):
        self.flight.inc(delta)

    def token_acquired(self, expires_on):
        self.tokens.labels("ok", "").inc()
        self.token_seen(expires_on)

    def token_failed(self, exc):
        self.tokens.labels("failed", token_error_code(exc)).inc()

    def token_seen(self, expires_on):
        if expires_on:
            self._token_expires_on = float(expires_on)

    def connection(self, event):
        self.connections.labels(event).inc()

    def credential_expiry(self, timestamp):
        if timestamp:
            self.credential.set(float(timestamp))
