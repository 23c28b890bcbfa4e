"""_parallel.bounded_map: order kept, at most `workers` at once, first error raised in the caller, progress."""

import threading
import time

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.read import address_filters
from ansible_collections.o365.smtp_oauth.plugins.module_utils._parallel import bounded_map


def test_results_in_order_and_never_more_than_workers_at_once():
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def work(n):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return n * n
    lines = []
    assert bounded_map(work, range(20), workers=3, progress=lines.append, label="squares") == [n * n for n in range(20)]
    assert 1 < state["peak"] <= 3
    assert lines[-1] == "squares: 20 of 20" and len(lines) == 10


def test_progress_lines_come_in_order_when_workers_finish_together():
    """Both workers finish at once; the first report waits a moment for another to overtake it. Reports are
    made one at a time, so none can: the last line is always the whole count (the -v report shows it)."""
    both = threading.Barrier(2)
    overtaken = threading.Event()
    lines = []

    def report(line):
        if not lines and not overtaken.is_set():
            overtaken.wait(0.5)
        else:
            overtaken.set()
        lines.append(line)

    def work(n):
        both.wait(5)
        return n
    assert bounded_map(work, [0, 1], workers=2, progress=report) == [0, 1]
    assert lines == ["items: 1 of 2", "items: 2 of 2"]


def test_first_error_is_raised_and_stops_the_rest():
    started = []

    def work(n):
        started.append(n)
        if n == 2:
            raise ValueError("mailbox 2")
        time.sleep(0.01)
        return n
    with pytest.raises(ValueError, match="mailbox 2"):
        bounded_map(work, range(100), workers=2)
    assert len(started) < 100


def test_empty_and_single_worker():
    assert bounded_map(lambda n: n, []) == []
    assert bounded_map(lambda n: n + 1, [1, 2], workers=1) == [2, 3]


def test_address_filters_stay_within_the_limit_and_cover_every_address():
    addresses = ["user%04d@contoso.onmicrosoft.com" % n for n in range(200)] + ["o'hara@contoso.onmicrosoft.com"]
    filters = address_filters(addresses, limit=500)
    assert len(filters) > 1 and all(len(f) <= 500 for f in filters)
    joined = " -or ".join(filters)
    assert all(("'%s'" % a.replace("'", "''")) in joined for a in addresses)
    assert address_filters([]) == []
