# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send many messages over one SmtpSession: rate limit, bounded retries, reconnects, per-message results.

`BulkSender(session, rate_limit=30, retries=3, retry_delay=2.0).send_all(messages)` where each message has
`envelope_from`, `recipients`, `data`, `message_id` (an _smtp.message.BuiltMessage). Returns one dict per message:
message_id, status (sent | refused | failed | uncertain), accepted, refused, code, reply, attempts, and for
failures error / fix.

When is a message sent again? Only when the server cannot have accepted it:
- a 250 to the end of data: accepted, never sent again;
- a refusal (4xx) or a lost connection before the end-of-data mark left this host: the server has nothing, so
  the message is sent again after a reconnect (bounded by `retries`);
- a lost connection after the end-of-data mark was sent but before the reply: the server may have accepted it
  (RFC 5321 section 4.1.1.4 leaves this open). Resending could deliver it twice, not resending could lose it;
  we never send twice by default: the message is reported `uncertain` with its Message-ID so it can be looked
  up in message trace, and the task fails. `resend_uncertain=True` chooses at-least-once instead (same
  Message-ID, so duplicates can be recognised).
Recipients refused with a 4xx (mailbox busy, too many recipients, throttled) are tried again, alone, after the
backoff: the ones already accepted never get a second copy.

Authentication failures (535 ..., a token that cannot be had) stop the run: every other message would fail the
same way. The results of the messages before it are kept (sent ones stay `sent`), the one it happened on is
`failed` and the rest `not_sent`, so a re-run can be limited to what was not sent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import time

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import O365Error
from ansible_collections.o365.smtp_oauth.plugins.module_utils._retry import Backoff
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.session import SendResult, SessionError


class RateLimiter(object):
    """At most `per_minute` sends in any 60 s window (Exchange: 30 / minute / mailbox). 0 = no limit."""

    def __init__(self, per_minute, clock=time.monotonic, sleep=time.sleep):
        self.per_minute = int(per_minute or 0)
        self.clock = clock
        self.sleep = sleep
        self.sent = collections.deque()
        self.waited = 0.0

    def acquire(self):
        if self.per_minute <= 0:
            return
        now = self.clock()
        while self.sent and now - self.sent[0] >= 60.0:
            self.sent.popleft()
        if len(self.sent) >= self.per_minute:
            delay = 60.0 - (now - self.sent[0])
            if delay > 0:
                self.sleep(delay)
                self.waited += delay
            self.sent.popleft()
        self.sent.append(self.clock())


class BulkSender(object):
    def __init__(self, session, rate_limit=30, retries=3, retry_delay=2.0, max_delay=60.0, resend_uncertain=False,
                 sleep=time.sleep, clock=time.time):
        self.session = session
        self.limiter = RateLimiter(rate_limit, sleep=sleep)
        self.retries = max(0, int(retries))
        self.retry_delay = float(retry_delay)
        self.max_delay = float(max_delay)
        self.resend_uncertain = resend_uncertain
        self.sleep = sleep
        self.clock = clock
        self.stats = {"retries": 0, "reconnects_for_token": 0, "rate_limit_wait": 0.0}

    def ensure_open(self):
        """Connect and authenticate if needed, or again when the token is about to expire."""
        session = self.session
        # A quarter of the token's life at authentication, at most 5 minutes: works for 1 h tokens and short ones.
        life = (session.token_expires_on or 0) - (session.authenticated_at or 0)
        if session.ensure_open(min(300.0, life / 4.0), self.clock()) == "renewed":
            self.stats["reconnects_for_token"] += 1

    def send_all(self, messages):
        results = []
        for index, message in enumerate(messages):
            try:
                results.append(self.send_one(message))
            except O365Error as exc:
                if not results:
                    raise  # nothing was sent: the task fails with this diagnosis alone
                # Keep what happened to the earlier messages: without it a re-run would send them twice.
                results.append(self._failure(message, 1, exc, "failed"))
                results.extend(self._failure(rest, 0, exc, "not_sent",
                                             "not sent: the run stopped at an earlier message: %s" % exc.message)
                               for rest in messages[index + 1:])
                break
        self.stats["rate_limit_wait"] = round(self.limiter.waited, 3)
        return results

    def send_one(self, message):
        attempt = 0
        recipients = list(message.recipients)
        # Across attempts: who has a copy, the reply to the first accepted data, who was refused (last word).
        accepted, final, refused = [], None, {}
        # retry_delay, then twice as long each time up to max_delay, jittered so that parallel senders do not retry
        # in lockstep; the count is bounded by `retries` below, not by time.
        backoff = Backoff(base=self.retry_delay, max_delay=self.max_delay, total=float("inf"),
                          max_attempts=self.retries + 1, sleep=self.sleep, clock=self.clock).start()
        while True:
            attempt += 1
            try:
                self.ensure_open()
                self.limiter.acquire()
                result = self.session.send(message.envelope_from, recipients, message.data,
                                           message_id=message.message_id)
                if result.status == "sent":
                    accepted.extend(result.accepted)
                    final = final or (result.code, result.reply)
                for address in recipients:
                    refused.pop(address, None)
                refused.update(result.refused)
                if not result.later or attempt > self.retries:
                    code, reply = final or (None, None)
                    out = SendResult(message.message_id, accepted, refused, code, reply,
                                     "sent" if accepted else "refused").as_dict()
                    out["attempts"] = attempt
                    return out
                recipients = result.later  # only the ones refused for now: the others have their copy
            except SessionError as exc:
                if getattr(exc, "committed", False) and not self.resend_uncertain:
                    return self._failure(message, attempt, exc, "uncertain",
                                         "the connection was lost after the whole message was sent and before the "
                                         "server answered: it may or may not have been accepted, so it was not sent "
                                         "again (no duplicates). Look up Message-ID %s in message trace."
                                         % message.message_id, accepted)
                if exc.stage in ("connect", "starttls", "auth") and not exc.temporary:
                    raise  # credentials / permissions / TLS: every message would fail the same way
                if exc.reconnect:
                    self.session.close()
                if not exc.temporary or attempt > self.retries:
                    return self._failure(message, attempt, exc, "failed", accepted=accepted)
            self.stats["retries"] += 1
            backoff.wait()

    @staticmethod
    def _failure(message, attempt, exc, status, note=None, accepted=None):
        return {
            "message_id": message.message_id,
            "status": status,
            "accepted": list(accepted or []),  # recipients that got it on an earlier attempt
            "refused": {},
            "code": getattr(exc, "smtp_code", None),
            "reply": getattr(exc, "server_reply", None),
            "attempts": attempt,
            "error": note or exc.message,
            "fix": exc.fix,
            "enhanced_code": getattr(exc, "enhanced_code", None),
        }
