"""Retry-After parsing and the bounded, jittered backoff (pure computation; sleep and clock injected)."""

import email.utils

import pytest
from hypothesis import given, strategies as st

from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import MAX_RETRY_AFTER, Backoff, parse_retry_after

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
