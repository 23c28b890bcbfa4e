# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When to try again and how long to wait: Retry-After parsing, jittered exponential backoff with a bounded total
wait (`Backoff`), one retry loop (`call_with_retries`) and one bounded poll (`poll`).

Every HTTP client, the SMTP sender and every "wait until Microsoft shows it" loop use these, so the bounds are
the same everywhere. Provider-neutral plain Python (no Ansible import). Sleep, clock and randomness are
injectable so tests run without waiting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import math
import random
import time
from email.utils import parsedate_to_datetime

# A server may ask for any delay; we never wait longer than this for one answer (Graph asks for seconds,
# a misbehaving proxy could ask for hours).
MAX_RETRY_AFTER = 120.0

# HTTP answers worth repeating a request for (Graph, Exchange admin API, the identity platform alike).
RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None if absent/invalid.

    now: epoch seconds used for the HTTP-date form (injectable for tests). Negative values become 0.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class Backoff(object):
    """Delays between attempts.

    base * 2**n with full jitter in [delay/2, delay], capped at max_delay; a server's Retry-After replaces the
    computed delay (clamped to max_retry_after). The sum of waits never exceeds total: next_delay() returns
    None when the next wait would pass it, and the caller gives up with the last error. When it was a server's
    Retry-After that did not fit, `refused_wait` holds the seconds asked for (and `remaining()` what was left), so
    the caller can say that it did not wait, and why.
    """

    def __init__(self, base=0.5, max_delay=30.0, total=60.0, max_attempts=6, max_retry_after=MAX_RETRY_AFTER,
                 sleep=time.sleep, clock=time.monotonic, rand=random.random):
        self.base = float(base)
        self.max_delay = float(max_delay)
        self.total = float(total)
        self.max_attempts = int(max_attempts)
        self.max_retry_after = float(max_retry_after)
        self.sleep = sleep
        self.clock = clock
        self.rand = rand
        self.attempt = 0  # retries done so far
        self.waited = 0.0  # seconds slept so far
        self.refused_wait = None  # a Retry-After (seconds) the last next_delay() refused: it did not fit in total
        self._start = None

    def start(self):
        self.attempt = 0
        self.waited = 0.0
        self.refused_wait = None
        self._start = self.clock()
        return self

    @property
    def started(self):
        return self._start is not None

    def elapsed(self):
        return 0.0 if self._start is None else self.clock() - self._start

    def remaining(self):
        """Seconds of the total still free for waiting."""
        return max(0.0, self.total - max(self.elapsed(), self.waited))

    def computed_delay(self):
        delay = min(self.max_delay, self.base * (2 ** self.attempt))
        return delay / 2.0 + self.rand() * delay / 2.0

    def next_delay(self, retry_after=None):
        """Seconds to wait before the next attempt, or None when retrying would break a bound."""
        if self._start is None:
            self.start()
        self.refused_wait = None
        if self.attempt + 1 >= self.max_attempts:
            return None
        if retry_after is not None:
            delay = min(float(retry_after), self.max_retry_after)
        else:
            delay = self.computed_delay()
        # Time spent in requests counts too: the bound is on the whole call, not only on sleeping.
        if max(self.elapsed(), self.waited) + delay > self.total:
            if retry_after is not None:
                self.refused_wait = float(retry_after)
            return None
        return delay

    def wait(self, retry_after=None):
        """Sleep before the next attempt; False (without sleeping) when the bounds say give up."""
        delay = self.next_delay(retry_after)
        if delay is None:
            return False
        if delay > 0:
            self.sleep(delay)
        self.attempt += 1
        self.waited += delay
        return True


def call_with_retries(attempt, retry_after, backoff, on_retry=None):
    """Call attempt() until its outcome is final or the backoff's bounds are reached; the last outcome stands.

    attempt(): returns a value or raises an Exception.
    retry_after(value, error): False when the outcome is final; True to try again after the backoff's own delay;
      a number of seconds (a server's Retry-After) to try again after that long (the backoff clamps it).
      error is the exception attempt() raised (value None), or None.
    backoff: a Backoff; started here unless the caller started it (then the time already spent counts).
    on_retry(value, error): called after each wait, before the next attempt (counters, logs).
    Returns the last value, or raises the last error, when it is final or when retrying would break a bound.
    """
    if not backoff.started:
        backoff.start()
    while True:
        try:
            value, error = attempt(), None
        except Exception as exc:  # classified by retry_after, raised unchanged when final
            value, error = None, exc
        verdict = retry_after(value, error)
        if verdict is False or verdict is None or not backoff.wait(None if verdict is True else verdict):
            if error is not None:
                raise error
            return value
        if on_retry is not None:
            on_retry(value, error)


PollResult = collections.namedtuple("PollResult", ["ready", "value", "attempts", "elapsed"])


def poll(read, timeout, ready=lambda value: value is not None, delay=1.0, max_delay=15.0, sleep=time.sleep,
         clock=time.monotonic):
    """Call read() until ready(value), for at most timeout seconds; a PollResult says how it ended.

    Waits delay, then twice as long each time up to max_delay. A wait that would end past the deadline is not
    slept: the poll stops there with ready False and the last value read (so a caller reports what it last saw
    and the timeout it was given). An exception from read() is raised at once: read() turns the errors that mean
    "not yet" into a value.
    """
    start = clock()
    deadline = start + max(0, timeout)
    attempts = 0
    while True:
        value = read()
        attempts += 1
        if ready(value):
            return PollResult(True, value, attempts, clock() - start)
        if clock() + delay > deadline:
            return PollResult(False, value, attempts, clock() - start)
        sleep(delay)
        delay = min(delay * 2, max_delay)
