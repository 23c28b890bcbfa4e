"""Latency and throttling of the emulated tenant's HTTP parts (graph, exchange), so that a benchmark can tell wall
time at real-world latency and the collection meets throttling the way Microsoft's services answer it.

    tenant.throttle.configure("exchange", latency=0.3, max_concurrent=3, budget=100, window=60)

- latency: seconds every request of the part takes before it is answered (slept in the server's worker thread,
  while it holds a concurrency slot).
- max_concurrent: requests of the part in flight at once; one more is answered 429 with `Retry-After: 1`.
- budget / window: at most `budget` requests of the part per sliding `window` seconds; beyond it 429 with a
  Retry-After of the seconds until the oldest request leaves the window (at least 1).
Microsoft: Exchange Online and Graph answer throttled requests with 429 and Retry-After (Graph throttling guide;
Exchange Online's "Too many concurrent requests" / "Retry after N seconds" answers). The admin API's own numbers
are not published: the limits here are settings, their defaults off (docs/development.md, Emulator assumptions).
`clock` is the tenant's (time.monotonic); counters `throttled` per part for tests and benchmarks.
"""

import collections
import heapq
import math
import threading
import time

PARTS = ("graph", "exchange")


class _Limits(object):
    def __init__(self):
        self.latency = 0.0
        self.max_concurrent = None
        self.budget = None
        self.window = 60.0
        self.in_flight = 0
        self.recent = collections.deque()
        self.throttled = 0
        self.peak = 0


class Throttle(object):
    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()
        self.clear()

    def clear(self):
        with self.lock:
            self.parts = {part: _Limits() for part in PARTS}

    def configure(self, part, latency=None, max_concurrent=None, budget=None, window=None):
        limits = self.parts[part]
        with self.lock:
            if latency is not None:
                limits.latency = float(latency)
            limits.max_concurrent = max_concurrent
            limits.budget = budget
            if window is not None:
                limits.window = float(window)
        return limits

    def throttled(self, part):
        return self.parts[part].throttled if part in self.parts else 0

    def peak(self, part):
        return self.parts[part].peak if part in self.parts else 0

    def admit(self, part):
        """None: admitted (call done(part) after answering); else the Retry-After seconds of a 429."""
        limits = self.parts.get(part)
        if limits is None:
            return None
        with self.lock:
            now = self.clock()
            while limits.recent and limits.recent[0] <= now - limits.window:
                limits.recent.popleft()
            if limits.max_concurrent is not None and limits.in_flight >= limits.max_concurrent:
                limits.throttled += 1
                return 1
            if limits.budget is not None and len(limits.recent) >= limits.budget:
                limits.throttled += 1
                return max(1, int(math.ceil(limits.recent[0] + limits.window - now)))
            limits.recent.append(now)
            limits.in_flight += 1
            limits.peak = max(limits.peak, limits.in_flight)
            latency = limits.latency
        if latency:
            self.sleep(latency)
        return None

    def done(self, part):
        limits = self.parts.get(part)
        if limits is not None:
            with self.lock:
                limits.in_flight = max(0, limits.in_flight - 1)


def simulated_wall(entries, latency):
    """The wall time the logged requests would take if each took `latency` seconds, keeping the concurrency the
    client really had: a request that started after another really ended may depend on it, so it starts after it
    in simulated time too; requests that overlapped in real time run side by side. Local processing between calls
    is left out (it is measured apart). entries: the request log's dicts (started, time = answered)."""
    timed = sorted((e for e in entries if e.get("started") is not None), key=lambda e: e["started"])
    ended = []  # heap of (real end, simulated end)
    done_before, wall = 0.0, 0.0
    for entry in timed:
        while ended and ended[0][0] <= entry["started"]:
            done_before = max(done_before, heapq.heappop(ended)[1])
        finish = done_before + latency
        heapq.heappush(ended, (entry["time"], finish))
        wall = max(wall, finish)
    return wall
