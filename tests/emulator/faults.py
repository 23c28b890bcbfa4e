"""Injected faults for the emulated tenant's HTTP parts (identity, graph, exchange, msi) and, by the same object,
any part that asks (the SMTP endpoint keeps its own verb-level faults).

    tenant.faults.add("graph", match="PATCH /v1.0/applications(uniqueName=", kind="drop_after_commit")
    tenant.faults.add("exchange", match="Add-MailboxPermission", kind="status", status=503, times=2)
    tenant.faults.add("identity", kind="status", status=429, retry_after=2)
    tenant.faults.add("graph", kind="delay", seconds=0.5)

match is compared, in this order, with the request line "METHOD /path?query" as a plain substring, the cmdlet or
SMTP verb (case-insensitive equality), and finally as a regular expression; no match = every request of the part.
Kinds: status (answer `status` with Retry-After `retry_after` when given), drop (close without answering),
drop_after_commit (do the work, then close without answering), delay (sleep `seconds`, then answer normally),
answer (answer `answer` = (status, headers, body bytes) as it is, without doing the work: a part's own error bodies,
e.g. exchange_wire.inject for the Exchange admin API's transient errors).
"""

import re
import threading

KINDS = ("status", "drop", "drop_after_commit", "delay", "answer")
PARTS = ("identity", "graph", "exchange", "msi", "smtp")


class Fault(object):
    __slots__ = ("part", "match", "kind", "times", "status", "retry_after", "seconds", "answer", "hits", "_regex")

    def __init__(self, part, match, kind, times, status, retry_after, seconds, answer=None):
        self.part, self.match, self.kind, self.times = part, match, kind, times
        self.status, self.retry_after, self.seconds, self.hits = status, retry_after, seconds, 0
        self.answer = answer
        try:
            self._regex = re.compile(match) if match else None
        except re.error:
            self._regex = None  # a literal such as "applications(uniqueName=": substring matching only

    def matches(self, line, name):
        if not self.match:
            return True
        if self.match in line or (name and self.match.lower() == str(name).lower()):
            return True
        return bool(self._regex and (self._regex.search(line) or (name and self._regex.fullmatch(str(name)))))


class Faults(object):
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, part, match=None, kind="status", times=1, status=429, retry_after=None, seconds=0.0, answer=None):
        """Queue a fault; times=None repeats it forever. Returns the Fault (its .hits counts uses)."""
        if part not in PARTS:
            raise ValueError("unknown part %r (one of %s)" % (part, ", ".join(PARTS)))
        if kind not in KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(KINDS)))
        if (kind == "answer") != (answer is not None):
            raise ValueError("answer=(status, headers, body) goes with kind='answer', and only with it")
        if kind == "status" and retry_after is None and status == 429:
            retry_after = 2
        fault = Fault(part, match, kind, times, int(status), retry_after, float(seconds), answer)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, part, line="", name=None):
        """The first pending fault for this request (consumed once), or None."""
        with self._lock:
            if not self._faults:
                return None
            for fault in self._faults:
                if fault.part == part and (fault.times is None or fault.times > 0) and fault.matches(line, name):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def pending(self, part=None):
        with self._lock:
            return [f for f in self._faults if (part is None or f.part == part) and (f.times is None or f.times > 0)]

    def clear(self):
        with self._lock:
            self._faults = []
