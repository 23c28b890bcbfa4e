"""Retry-After parsing, the bounded jittered backoff, the retry loop and the bounded poll (pure computation; sleep
and clock injected, so nothing here waits)."""

import email.utils

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import (
    MAX_RETRY_AFTER,
    Backoff,
    call_with_retries,
    parse_retry_after,
    poll,
)

from helpers.clock import FakeTime


def backoff(fake, **kw):
    kw.setdefault("rand", lambda: 1.0)
    return Backoff(sleep=fake.sleep, clock=fake.clock, **kw).start()


@pytest.mark.parametrize("value, expected", [
    ("0", 0.0), ("7", 7.0), (" 12 ", 12.0), ("1.5", 1.5), ("-3", 0.0), (None, None), ("", None), ("soon", None),
    ("nan", None), ("inf", None),
])
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_is_relative_to_now():
    now = 1_700_000_000
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_exponential_delays_with_jitter_capped():
    fake = FakeTime()
    b = backoff(fake, base=1, max_delay=5, total=1000, max_attempts=10, rand=lambda: 0.0)
    for attempt in range(5):
        assert b.wait(), attempt
    # jitter 0 gives the lower half of 1, 2, 4, 5 (cap), 5
    assert fake.sleeps == [0.5, 1.0, 2.0, 2.5, 2.5]


def test_retry_after_replaces_the_computed_delay_and_is_clamped():
    fake = FakeTime()
    b = backoff(fake, base=1, total=10_000, max_attempts=5)
    assert b.wait(retry_after=7)
    assert b.wait(retry_after=10_000)
    assert fake.sleeps == [7, MAX_RETRY_AFTER]


def test_total_wait_is_bounded_and_nothing_is_slept_past_it():
    fake = FakeTime()
    b = backoff(fake, base=1, total=10, max_attempts=100)
    assert b.wait(retry_after=6)
    assert not b.wait(retry_after=6), "6 + 6 > 10: give up instead of sleeping"
    assert fake.sleeps == [6]


def test_time_spent_in_requests_counts_against_the_total():
    fake = FakeTime()
    b = backoff(fake, base=1, total=10, max_attempts=100)
    fake.now += 9  # a slow request
    assert not b.wait(retry_after=2)
    assert fake.sleeps == []


def test_max_attempts_counts_the_first_attempt():
    fake = FakeTime()
    b = backoff(fake, base=0.01, total=100, max_attempts=3)
    assert b.wait() and b.wait()
    assert not b.wait()
    assert len(fake.sleeps) == 2


# No wall-clock deadline for the property tests: they run on a fake clock, and a busy machine is not a bug.
@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)), max_size=30),
       st.floats(min_value=0, max_value=300), st.floats(min_value=0, max_value=1))
def test_never_waits_more_than_total(retry_afters, total, jitter):
    fake = FakeTime()
    b = backoff(fake, base=0.5, total=total, max_attempts=50, rand=lambda: jitter)
    for value in retry_afters:
        if not b.wait(retry_after=value):
            break
    assert sum(fake.sleeps) <= total + 1e-9
    assert all(s <= MAX_RETRY_AFTER for s in fake.sleeps)


# -- call_with_retries ---------------------------------------------------------------------------------------------
class Flaky(object):
    """attempt(): plays the given outcomes in order (an exception instance is raised), then the last one again."""

    def __init__(self, *outcomes):
        self.outcomes, self.calls = list(outcomes), 0

    def __call__(self):
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def by_status(value, error):
    """503 and ConnectionError are worth another try; a "retry-after:N" answer asks for N seconds."""
    if error is not None:
        return isinstance(error, ConnectionError)
    if isinstance(value, str) and value.startswith("retry-after:"):
        return float(value.split(":", 1)[1])
    return value == 503


def test_retries_until_the_outcome_is_final_and_counts_each_retry():
    fake, retried = FakeTime(), []
    attempt = Flaky(ConnectionError("reset"), 503, "retry-after:7", 200)
    result = call_with_retries(attempt, by_status, backoff(fake, base=1, total=100, max_attempts=10),
                               on_retry=lambda value, error: retried.append(error or value))
    assert result == 200 and attempt.calls == 4
    assert fake.sleeps[:2] == [1.0, 2.0] and fake.sleeps[2] == 7.0, "computed delays, then the server's"
    assert len(retried) == 3 and isinstance(retried[0], ConnectionError)


def test_a_final_error_is_raised_at_once_and_a_final_value_returned_at_once():
    fake = FakeTime()
    with pytest.raises(ValueError):
        call_with_retries(Flaky(ValueError("bug")), by_status, backoff(fake))
    assert call_with_retries(Flaky(404), by_status, backoff(fake)) == 404
    assert fake.sleeps == []


def test_past_the_bounds_the_last_answer_stands():
    fake = FakeTime()
    attempt = Flaky(503)
    assert call_with_retries(attempt, by_status, backoff(fake, base=1, total=100, max_attempts=3)) == 503
    assert attempt.calls == 3 and len(fake.sleeps) == 2
    attempt = Flaky(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        call_with_retries(attempt, by_status, backoff(fake, base=1, total=100, max_attempts=2))
    assert attempt.calls == 2
    # A Retry-After past the total budget is not slept at all: one attempt, the throttled answer back.
    fake = FakeTime()
    attempt = Flaky("retry-after:60")
    assert call_with_retries(attempt, by_status, backoff(fake, total=30)) == "retry-after:60"
    assert attempt.calls == 1 and fake.sleeps == []


def test_a_started_backoff_keeps_its_clock_and_an_unstarted_one_is_started():
    fake = FakeTime()
    started = backoff(fake, base=1, total=10, max_attempts=10)
    fake.now += 9.5  # time already spent before the call counts against the total
    assert call_with_retries(Flaky(503, 200), by_status, started) == 503 and fake.sleeps == []
    fresh = Backoff(base=1, total=10, max_attempts=10, sleep=fake.sleep, clock=fake.clock, rand=lambda: 1.0)
    assert not fresh.started
    assert call_with_retries(Flaky(503, 200), by_status, fresh) == 200 and fresh.started


# -- poll -----------------------------------------------------------------------------------------------------------
def test_poll_returns_as_soon_as_the_value_is_ready():
    fake = FakeTime()
    values = iter([None, None, "there"])
    result = poll(lambda: next(values), 60, delay=1.0, max_delay=15.0, sleep=fake.sleep, clock=fake.clock)
    assert result.ready and result.value == "there" and result.attempts == 3
    assert fake.sleeps == [1.0, 2.0] and result.elapsed == 3.0


def test_poll_doubles_its_delay_up_to_max_delay():
    fake = FakeTime()
    result = poll(lambda: None, 100, delay=1.0, max_delay=5.0, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps[:5] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert not result.ready


def test_poll_never_sleeps_past_its_deadline_and_reports_the_last_value():
    fake = FakeTime()
    seen = []

    def read():
        seen.append(len(seen))
        return seen[-1]
    result = poll(read, 10, ready=lambda n: n > 100, delay=1.0, max_delay=15.0, sleep=fake.sleep, clock=fake.clock)
    # 1 + 2 + 4 = 7 s slept; the next wait (8 s) would end at 15 s, past the 10 s deadline: not slept.
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert not result.ready and result.value == 3 and result.attempts == 4 and result.elapsed == 7.0


def test_poll_with_a_zero_or_negative_timeout_reads_once_and_never_sleeps():
    for timeout in (0, -5):
        fake = FakeTime()
        result = poll(lambda: None, timeout, sleep=fake.sleep, clock=fake.clock)
        assert result.attempts == 1 and not result.ready and fake.sleeps == []


def test_poll_raises_what_read_raises():
    fake = FakeTime()
    with pytest.raises(KeyError):
        poll(lambda: {}["missing"], 60, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == []


@settings(deadline=None)  # a fake clock (see test_never_waits_more_than_total)
@given(st.floats(min_value=0, max_value=500), st.floats(min_value=0.01, max_value=20),
       st.floats(min_value=0.01, max_value=60), st.floats(min_value=0, max_value=30))
def test_poll_never_runs_past_its_deadline(timeout, delay, max_delay, read_cost):
    """Whatever the delays and however long each read takes, no sleep starts that would end past the deadline."""
    fake = FakeTime()
    start = fake.now
    ends = []

    def read():
        fake.now += read_cost  # a slow read: its time counts against the deadline too
        return None

    def sleep(seconds):
        fake.sleep(seconds)
        ends.append(fake.now)
    result = poll(read, timeout, delay=delay, max_delay=max_delay, sleep=sleep, clock=fake.clock)
    assert not result.ready and result.attempts == len(fake.sleeps) + 1
    assert all(end <= start + timeout + 1e-9 for end in ends)
