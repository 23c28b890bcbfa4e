"""Sending budgets per SASL login, else per client address (issue 26 item 5: one compromised device must not
spend the mailbox's daily quota for every device). Real components: the emulated Exchange endpoint upstream,
smtplib's LMTP client in Postfix's place, Postfix's own Received header naming the login; only the clock of the
sliding windows is a stand-in (a day cannot pass in a test)."""


import pytest

from test_proxy import RECEIVED
from test_proxy_delivery import codes, config_refusal, lmtp_send, queued, received

import o365_smtp_proxy_limits as limits  # shipped next to the proxy, on its path once test_proxy loaded it


def printer():
    """A new message from the login printer (a queue id of its own, as Postfix gives each message)."""
    return dict(body=queued(received("printer@relay1.lan") + "Subject: scan\r\n\r\nx\r\n"), xforward="ADDR=203.0.113.5")


def scanner():
    return dict(body=queued(received("scanner@relay1.lan") + "Subject: scan\r\n\r\nx\r\n"), xforward="ADDR=203.0.113.5")


def rcpts(count, start=0):
    return ["r%d@example.com" % n for n in range(start, start + count)]


def test_a_login_over_its_message_budget_waits_in_the_queue_and_nothing_goes_upstream(run_proxy, upstream):
    running = run_proxy(client_limits={"messages_per_hour": 2})
    assert codes(lmtp_send(running, **printer())) == [250]
    assert codes(lmtp_send(running, **printer())) == [250]
    [(code, text)] = lmtp_send(running, **printer())
    assert code == 451 and text == b"4.7.1 login printer@relay1.lan reached its 2 messages per hour; " \
                                   b"the message waits in the queue"
    assert len(upstream.messages) == 2


def test_recipients_are_counted_and_the_whole_message_waits_when_it_does_not_fit(run_proxy, upstream):
    running = run_proxy(client_limits={"recipients_per_day": 50})
    assert codes(lmtp_send(running, rcpts=rcpts(30), **printer())) == [250] * 30
    replies = lmtp_send(running, rcpts=rcpts(21, 30), **printer())  # 51 > 50: none of them goes
    assert codes(replies) == [451] * 21 and b"reached its 50 recipients per day" in replies[0][1]
    assert codes(lmtp_send(running, rcpts=rcpts(20, 30), **printer())) == [250] * 20  # exactly 50
    assert len(upstream.messages) == 2


def test_logins_and_clients_without_a_login_have_budgets_of_their_own(run_proxy, upstream):
    running = run_proxy(client_limits={"messages_per_day": 1})
    assert codes(lmtp_send(running, **printer())) == [250]
    assert codes(lmtp_send(running, **printer())) == [451]
    assert codes(lmtp_send(running, **scanner())) == [250]  # same address, another login
    # Without a login: the client's address from XFORWARD (IPv6 as Postfix writes it), one budget each.
    assert codes(lmtp_send(running, body=queued(RECEIVED), xforward="ADDR=192.0.2.7")) == [250]
    [(code, text)] = lmtp_send(running, body=queued(RECEIVED), xforward="ADDR=192.0.2.7")
    assert code == 451 and text.startswith(b"4.7.1 client 192.0.2.7 reached its 1 messages per day")
    assert codes(lmtp_send(running, body=queued(RECEIVED), xforward="ADDR=IPv6:2001:db8::7")) == [250]
    assert codes(lmtp_send(running, body=queued(RECEIVED), xforward="ADDR=IPv6:2001:db8::7")) == [451]
    # A device in Postfix's local rewrite context (SOURCE=LOCAL with its address, as the role configures it)
    # spends its budget like any other; root's local sendmail (no client address, relay_verify) is not limited.
    assert codes(lmtp_send(running, body=queued(RECEIVED), xforward="ADDR=127.0.0.9 SOURCE=LOCAL")) == [250]
    assert codes(lmtp_send(running, body=queued(RECEIVED), xforward="ADDR=127.0.0.9 SOURCE=LOCAL")) == [451]
    for _n in range(2):
        assert codes(lmtp_send(running, body=queued(RECEIVED), xforward="SOURCE=LOCAL")) == [250]
    assert len(upstream.messages) == 7


def test_only_what_the_upstream_accepted_is_spent(run_proxy, upstream):
    running = run_proxy(client_limits={"messages_per_hour": 2, "recipients_per_hour": 50})
    upstream.faults.add("DATA_END", "busy")  # Exchange's 451 4.7.500 to the data: deferred, nothing spent
    assert codes(lmtp_send(running, **printer())) == [451]
    upstream.settings.refuse_recipients = {"r0@example.com"}  # 550 5.1.10: 49 of the 50 recipients are spent
    assert codes(lmtp_send(running, rcpts=rcpts(50), **printer())) == [550] + [250] * 49
    assert codes(lmtp_send(running, rcpts=rcpts(1, 50), **printer())) == [250]  # the 50th recipient, 2nd message
    [(code, text)] = lmtp_send(running, rcpts=rcpts(1, 51), **printer())
    assert code == 451 and b"reached its 2 messages per hour" in text
    assert len(upstream.messages) == 2


def test_the_windows_slide_and_a_message_under_way_holds_its_share():
    now = [1000.0]
    budgets = limits.SendingBudgets({"messages_per_hour": 2, "messages_per_day": 3, "recipients_per_day": 100},
                                    clock=lambda: now[0])
    first, refusal = budgets.reserve("login a", 60)
    assert refusal is None
    # Two forwards at once: the first one's recipients are held while it runs.
    assert budgets.reserve("login a", 41) == (None, "451 4.7.1 login a reached its 100 recipients per day; "
                                                    "the message waits in the queue")
    budgets.settle(first, 60)
    ticket, _refusal = budgets.reserve("login a", 1)
    budgets.settle(ticket, 1)
    assert "2 messages per hour" in budgets.reserve("login a", 1)[1]
    now[0] += 3600  # an hour later the hour's budget is back, the day's is not
    ticket, refusal = budgets.reserve("login a", 1)
    assert refusal is None
    budgets.settle(ticket, 1)
    assert "3 messages per day" in budgets.reserve("login a", 1)[1]
    now[0] = 1000.0 + 86400  # a day after the first two: only the third is left in the day's window
    ticket, refusal = budgets.reserve("login a", 1)
    assert refusal is None and [count for _when, count in budgets.spent["login a"]] == [1]
    budgets.settle(ticket, 0)
    # A client that had nothing accepted leaves nothing behind.
    budgets.settle(budgets.reserve("login b", 1)[0], 0)
    assert set(budgets.spent) == {"login a"} and budgets.held == {}
    now[0] += 86400  # a client that does not come back is forgotten too, at the next hourly sweep
    budgets.settle(budgets.reserve("login b", 1)[0], 1)
    assert set(budgets.spent) == {"login b"}


def test_unlimited_by_default_and_no_state_kept():
    budgets = limits.SendingBudgets({})
    assert budgets.reserve("login a", 500) == (None, None) and budgets.spent == {}
    assert limits.SendingBudgets({"messages_per_day": 1}).reserve(None, 1) == (None, None)  # root's sendmail


@pytest.mark.parametrize("value, words", [
    (["messages_per_day"], "want an object"),
    ({"messages_per_week": 5}, "unknown setting messages_per_week"),
    ({"messages_per_day": -1}, "messages_per_day: want a whole number >= 0"),
    ({"messages_per_day": "10"}, "messages_per_day: want a whole number >= 0"),
    ({"recipients_per_hour": 10}, "recipients_per_hour: want 0 or at least 50"),
])
def test_budgets_that_make_no_sense_are_refused_at_load_naming_the_setting(tmp_path, value, words):
    refusal = config_refusal(tmp_path, client_limits=value)
    assert refusal.startswith("client_limits: ") and words in refusal
