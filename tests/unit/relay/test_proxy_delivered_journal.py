"""The proxy's delivered journal on its own (o365_smtp_proxy_delivered.py): what survives a crash mid-line, what
is forgotten after the retention, that the file stays bounded, and that a disk that refuses writes never turns a
delivery Exchange accepted into a retry. Real files; only the clock is a stand-in (days cannot pass in a test)."""

import logging
import os


import o365_smtp_proxy_delivered as delivered


class Clock(object):
    def __init__(self, now=1.8e9):
        self.now = now

    def __call__(self):
        return self.now


def test_postfix_time_values():
    assert [delivered.postfix_seconds(v) for v in ("5d", "120h", "90m", "3600s", "3600", "1w")] == \
        [432000, 432000, 5400, 3600, 3600, 604800]
    for bad in ("5 days", "-1d", "", "1y"):
        try:
            delivered.postfix_seconds(bad)
        except ValueError as exc:
            assert "Postfix time" in str(exc)
        else:
            raise AssertionError(bad)


def test_keys_differ_by_queue_id_recipient_and_message():
    digest = delivered.message_digest(b"Received: x\r\n", 100)
    key = delivered.delivery_key("4XbQ2", "Bob@Example.com", digest)
    assert key == delivered.delivery_key("4XbQ2", "bob@example.com", digest)  # the address's case is not a new one
    assert key != delivered.delivery_key("4XbQ3", "bob@example.com", digest)
    assert key != delivered.delivery_key("4XbQ2", "eve@example.com", digest)
    assert key != delivered.delivery_key("4XbQ2", "bob@example.com", delivered.message_digest(b"Received: x\r\n", 101))


def test_a_line_cut_by_a_crash_is_skipped_and_the_rest_remembered(tmp_path):
    path = str(tmp_path / "delivered.journal")
    clock = Clock()
    memory = delivered.DeliveredMemory(path, "5d", clock=clock)
    memory.remember(["a" * 64, "b" * 64], "4XbQ2")
    memory.close()
    with open(path, "a") as handle:
        handle.write("1800000000.0")  # the time of a third line, then the power went
    again = delivered.DeliveredMemory(path, "5d", clock=clock)
    assert again.delivered("a" * 64) and again.delivered("b" * 64) and len(again.seen) == 2
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_entries_past_the_retention_are_forgotten_and_the_file_stays_bounded(tmp_path):
    path = str(tmp_path / "delivered.journal")
    clock = Clock()
    memory = delivered.DeliveredMemory(path, "1d", clock=clock)
    memory.remember(["old%061d" % n for n in range(600)])
    clock.now += 86400 + 1
    assert not memory.delivered("old%061d" % 0)
    memory.remember(["new%061d" % n for n in range(1200)])  # past twice what was kept: pruned, rewritten
    with open(path) as handle:
        lines = handle.readlines()
    assert len(lines) == 1200 and not any(line.split()[1].startswith("old") for line in lines)
    memory.close()
    assert len(delivered.DeliveredMemory(path, "1d", clock=clock).seen) == 1200


def test_memory_only_is_pruned_too():
    clock = Clock()
    memory = delivered.DeliveredMemory("", "1h", clock=clock)
    memory.remember(["k%063d" % n for n in range(900)])
    clock.now += 3601
    memory.remember(["n%063d" % n for n in range(200)])
    assert len(memory.seen) == 200


def test_a_disk_that_refuses_the_write_keeps_the_delivery_in_memory(tmp_path, caplog):
    memory = delivered.DeliveredMemory(str(tmp_path / "delivered.journal"), "5d")
    memory.journal.close()
    memory.journal = open("/dev/full", "a")  # every write fails with ENOSPC, as a full disk does
    with caplog.at_level(logging.ERROR):
        memory.remember(["c" * 64], "4XbQ2")
    assert memory.delivered("c" * 64)
    assert "queue_id=4XbQ2 delivered journal" in caplog.text and "remembered in memory only" in caplog.text
