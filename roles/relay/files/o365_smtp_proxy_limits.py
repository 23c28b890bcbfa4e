# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sending budgets of the relay's proxy, per SASL login or, for a client without one, per client address: messages
and recipients over the last hour and the last day (sliding windows). Exchange Online counts one quota for the
whole mailbox (10,000 recipients a day); without a budget per client, one compromised device spends it and every
device's mail bounces for a day. Over budget, the answer is a 4xx: Postfix keeps the message and retries.

Only what the upstream accepted is spent (a refused or deferred message costs nothing); a message under way holds
its share until its answer, so parallel workers cannot overshoot. The counters live in memory: a restart of the
proxy starts every budget afresh (docs/relay.md, known limits)."""

from __future__ import absolute_import, division, print_function

import collections
import time

WINDOWS = (("hour", 3600), ("day", 86400))
KINDS = ("messages", "recipients")
SETTINGS = tuple("%s_per_%s" % (kind, window) for kind in KINDS for window, _seconds in WINDOWS)
# Postfix hands the proxy up to default_destination_recipient_limit (50) recipients in one delivery: a smaller
# recipient budget could never let such a message through, and it would wait until it expired.
MIN_RECIPIENTS = 50


class LimitProblem(ValueError):
    pass


def check_limits(limits):
    """The limits as {setting: int}, all of SETTINGS (0 = unlimited); LimitProblem naming the setting if wrong."""
    if not isinstance(limits, dict):
        raise LimitProblem("want an object {%s: count}" % ", ".join(SETTINGS))
    unknown = sorted(set(limits) - set(SETTINGS))
    if unknown:
        raise LimitProblem("unknown setting %s (known: %s)" % (", ".join(unknown), ", ".join(SETTINGS)))
    checked = {}
    for name in SETTINGS:
        value = limits.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LimitProblem("%s: want a whole number >= 0 (0 = unlimited), got %r" % (name, value))
        if name.startswith("recipients") and 0 < value < MIN_RECIPIENTS:
            raise LimitProblem("%s: want 0 or at least %d (Postfix delivers up to %d recipients at once), got %d"
                               % (name, MIN_RECIPIENTS, MIN_RECIPIENTS, value))
        checked[name] = value
    return checked


class SendingBudgets(object):
    """reserve() before a forward, settle() with the number of recipients the upstream accepted after it."""

    def __init__(self, limits, clock=time.monotonic):
        self.limits = check_limits(limits)
        self.clock = clock
        self.spent = {}     # who -> deque of (when, recipients), one per accepted message, oldest first
        self.held = {}      # who -> [messages, recipients] of forwards under way
        self.swept = clock()

    @property
    def active(self):
        return any(self.limits.values())

    def reserve(self, who, recipients):
        """(ticket, None) when the message fits: its share is held until settle(ticket, ...); (None, 4xx reply)
        when it does not. who: "login NAME", "client ADDRESS", or None (not limited)."""
        if who is None or not self.active:
            return None, None
        now = self.clock()
        spent = self._pruned(who, now)
        held = self.held.get(who, [0, 0])
        for window, seconds in WINDOWS:
            recent = [count for when, count in spent if when > now - seconds]
            used = {"messages": len(recent) + held[0], "recipients": sum(recent) + held[1]}
            wanted = {"messages": 1, "recipients": recipients}
            for kind in KINDS:
                limit = self.limits["%s_per_%s" % (kind, window)]
                if limit and used[kind] + wanted[kind] > limit:
                    return None, ("451 4.7.1 %s reached its %d %s per %s; the message waits in the queue"
                                  % (who, limit, kind, window))
        self.held[who] = [held[0] + 1, held[1] + recipients]
        return (who, recipients), None

    def settle(self, ticket, accepted):
        """The forward of ticket is over; accepted: recipients the upstream took (0: nothing is spent)."""
        if ticket is None:
            return
        who, recipients = ticket
        held = self.held[who]
        held[0] -= 1
        held[1] -= recipients
        if held == [0, 0]:
            del self.held[who]
        now = self.clock()
        if accepted > 0:
            self.spent.setdefault(who, collections.deque()).append((now, accepted))
        if now - self.swept > WINDOWS[0][1]:  # once an hour: forget clients that sent nothing for a day
            self.swept = now
            for other in list(self.spent):
                self._pruned(other, now)

    def _pruned(self, who, now):
        """who's accepted messages of the longest window; forgets those older, and clients with none."""
        spent = self.spent.get(who)
        if spent is None:
            return ()
        horizon = now - WINDOWS[-1][1]
        while spent and spent[0][0] <= horizon:
            spent.popleft()
        if not spent:
            del self.spent[who]
        return spent
