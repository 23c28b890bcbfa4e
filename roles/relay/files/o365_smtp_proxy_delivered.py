# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the proxy delivered lately, so that Postfix's retry of a delivery Exchange already accepted is answered
without sending the message a second time.

Postfix sends a message again whenever it did not hear the proxy's answer: it was stopped or restarted, or its LMTP
client gave up, after the proxy had sent the data upstream and before Exchange answered. Exchange accepted it, and
a second forward would be a duplicate. So each recipient Exchange accepted is remembered by a key made of Postfix's
queue id (its own Received header on top), the recipient and a digest of the header section and size (a reused
short queue id never matches another message), for `delivered_retention` seconds (the role: relay_queue_lifetime,
as long as Postfix retries a message). In memory, and in the file `delivered_journal` when there is one: a line a
recipient, written and fsync'd before Postfix hears the answer, so that a restart of the proxy forgets nothing.

The journal holds no address or message text: a line is the time, the key's SHA-256 and the queue id (for the log).
"""

from __future__ import absolute_import, division, print_function

import hashlib
import logging
import os
import re
import threading
import time

LOG = logging.getLogger("o365_smtp_proxy")


_POSTFIX_TIME = re.compile(r"^([0-9]+)([smhdw]?)$")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def postfix_seconds(value):
    """Seconds in a Postfix time value (5d, 120h, 3600s, 3600); ValueError for anything else."""
    match = _POSTFIX_TIME.match(str(value).strip())
    if not match:
        raise ValueError("want a Postfix time (5d, 120h, 3600s), got %r" % (value,))
    return int(match.group(1)) * _TIME_UNITS[match.group(2)]


def message_digest(head, size):
    """The digest of a message as Postfix queued it: its header section (bytes) and its size."""
    return hashlib.sha256(b"%d\0" % size + head).hexdigest()


def delivery_key(queue_id, recipient, digest):
    return hashlib.sha256(("%s\0%s\0%s" % (queue_id, recipient.lower(), digest)).encode("utf-8")).hexdigest()


class DeliveredMemory(object):
    """(key -> unix time it was delivered), kept for `retention` (a Postfix time: 5d); `path` ("" = memory only) keeps it across
    restarts. Thread-safe: the forwards record from their worker threads."""

    def __init__(self, path="", retention="5d", clock=time.time):
        self.path = path
        self.retention = postfix_seconds(retention)
        self.clock = clock
        self.seen = {}
        self.lock = threading.Lock()
        self.appended = 0  # keys recorded since the last pruning
        self.kept = 0      # keys kept by it
        self.journal = None
        if path:
            self._load()
            self._rewrite()

    def _live(self, when, now):
        return now - when < self.retention

    def _load(self):
        now = self.clock()
        try:
            with open(self.path, "r") as handle:
                for line in handle:
                    fields = line.split()
                    try:
                        when, key = float(fields[0]), fields[1]
                    except (IndexError, ValueError):
                        continue  # a line cut short by a crash: that delivery's answer never reached Postfix
                    if self._live(when, now):
                        self.seen[key] = when
        except FileNotFoundError:
            pass
        LOG.info("delivered journal %s: %d recent deliveries remembered", self.path, len(self.seen))

    def _rewrite(self):
        """The journal anew with the entries in memory (at start, and at each pruning)."""
        temporary = self.path + ".new"
        with open(temporary, "w") as handle:
            for key, when in self.seen.items():
                handle.write("%.3f %s -\n" % (when, key))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)
        if self.journal:
            self.journal.close()
        self.journal = open(self.path, "a")
        self.kept = len(self.seen)

    def delivered(self, key):
        """True when this key was delivered within the retention."""
        with self.lock:
            when = self.seen.get(key)
            return when is not None and self._live(when, self.clock())

    def remember(self, keys, queue_id="-"):
        """Record delivered keys; returns once they are on disk (when there is a journal)."""
        if not keys:
            return
        with self.lock:
            now = self.clock()
            for key in keys:
                self.seen[key] = now
            self.appended += len(keys)
            if self.journal:
                try:
                    self.journal.write("".join("%.3f %s %s\n" % (now, key, queue_id) for key in keys))
                    self.journal.flush()
                    os.fsync(self.journal.fileno())
                except OSError as exc:
                    # Exchange has the message: the answer stays 250 (a 4xx would send it again now). Only a
                    # restart of the proxy before Postfix's retry would forget it.
                    LOG.error("queue_id=%s delivered journal %s: cannot write (%s); remembered in memory only",
                              queue_id, self.path, exc.strerror or exc)
            if self.appended > max(1000, self.kept):
                # Twice what was kept at the last pruning: drop what is too old (the journal too).
                self.seen = dict((k, w) for k, w in self.seen.items() if self._live(w, now))
                if self.journal:
                    try:
                        self._rewrite()
                    except OSError as exc:
                        LOG.error("delivered journal %s: cannot rewrite (%s); appending to it", self.path,
                                  exc.strerror or exc)
                self.kept, self.appended = len(self.seen), 0

    def close(self):
        with self.lock:
            if self.journal:
                self.journal.close()
                self.journal = None
