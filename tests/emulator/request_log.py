"""The emulated tenant's request log: one entry per HTTP request or SMTP command, shared by every part.

Entries are plain dicts: time, part (identity|graph|exchange|msi|smtp), method, path, cmdlet, verb, status, write,
client_id (plus anything a part adds, e.g. fault). Tests take a mark before an action and read what came after:

    mark = tenant.log.mark(); ...; assert tenant.log.writes(since=mark) == []

While the HTTPS server handles a request, a part's own `log.add(...)` on that thread completes the server's entry
instead of adding a second one (the Exchange handler logs its cmdlet itself).
"""

import threading
import time

FIELDS = ("time", "part", "method", "path", "cmdlet", "verb", "status", "write", "client_id")


class RequestLog(object):
    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []
        self._base = 0  # entries dropped by clear(): marks stay valid across a reset
        self._local = threading.local()

    # -- writing -------------------------------------------------------------------------------------------------
    def add(self, **entry):
        pending = getattr(self._local, "pending", None)
        if pending is not None and entry.get("part", pending["part"]) == pending["part"]:
            pending.update({k: v for k, v in entry.items() if v is not None})
            return pending
        return self._append(entry)

    def _append(self, entry):
        record = dict.fromkeys(FIELDS)
        record["write"] = False
        record["time"] = time.time()
        record.update(entry)
        with self._lock:
            self._entries.append(record)
        return record

    def begin(self, **entry):
        """Start the entry of the request this thread is serving; parts may complete it with add()."""
        self._local.pending = dict(entry, started=time.time())  # "time" is when it was answered

    def end(self, **entry):
        """Record it: what the part added wins over the server's defaults in entry."""
        pending = getattr(self._local, "pending", None) or {}
        self._local.pending = None
        entry.update({k: v for k, v in pending.items() if v is not None})
        return self._append(entry)

    def clear(self):
        with self._lock:
            self._base += len(self._entries)
            self._entries = []

    # -- reading -------------------------------------------------------------------------------------------------
    def mark(self):
        with self._lock:
            return self._base + len(self._entries)

    def since(self, mark=0):
        with self._lock:
            return list(self._entries[max(0, mark - self._base):])

    def entries(self, since=None, **filters):
        rows = self.since(since or 0)
        return [e for e in rows if all(e.get(k) == v for k, v in filters.items())]

    def writes(self, part=None, since=None):
        return [e for e in self.entries(since) if e.get("write") and (part is None or e.get("part") == part)]

    def count(self, since=None, **filters):
        return len(self.entries(since, **filters))

    def __len__(self):
        with self._lock:
            return len(self._entries)

    def __iter__(self):
        return iter(self.since(0))
