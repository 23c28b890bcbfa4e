# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small pool for calls that a service answers only one object at a time (Exchange's per-mailbox cmdlets).

Few workers on purpose: Exchange Online throttles an app's admin calls (429 + Retry-After, which each worker's
HttpClient honours); a small pool cuts wall time without spending the budget faster than a few parallel
PowerShell sessions would. The first error stops the remaining items and is raised in the caller. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

WORKERS = 4  # parallel requests per task


def bounded_map(fn, items, workers=WORKERS, progress=None, label="items"):
    """[fn(item) for item in items], at most `workers` at a time, results in the order of `items`.

    progress: callable(line) told how far it is (about every tenth of the work, and at the end)."""
    items = list(items)
    results = [None] * len(items)
    if not items:
        return results
    state = {"next": 0, "done": 0}
    errors = []
    lock = threading.Lock()
    step = max(1, len(items) // 10)

    def work():
        while True:
            with lock:
                if errors or state["next"] >= len(items):
                    return
                index = state["next"]
                state["next"] += 1
            try:
                results[index] = fn(items[index])
            except Exception as error:  # raised again in the caller, with its traceback
                with lock:
                    errors.append(error)
                return
            with lock:
                state["done"] += 1
                done = state["done"]
                # Under the lock: two workers finishing together must not report "2 of 2" before "1 of 2".
                if progress is not None and (done % step == 0 or done == len(items)):
                    progress("%s: %d of %d" % (label, done, len(items)))

    count = max(1, min(workers, len(items)))
    if count == 1:
        work()
    else:
        threads = [threading.Thread(target=work, name="o365-worker-%d" % n) for n in range(count)]
        for thread in threads:
            thread.daemon = True
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results
