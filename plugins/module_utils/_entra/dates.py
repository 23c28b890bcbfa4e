# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Graph timestamps (ISO 8601, UTC, up to 7 fractional digits) and the day arithmetic of credential expiry."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import math
import re

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")


def utcnow():
    return datetime.datetime.now(UTC)


def parse_time(value):
    """A Graph or user timestamp -> aware UTC datetime; None for None/empty; ValueError when malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=UTC)
    match = _ISO.match(str(value).strip())
    if not match:
        raise ValueError("not an ISO 8601 date or time: %r" % (value,))
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    result = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                               micro, tzinfo=UTC)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        result -= sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return result


def format_time(value):
    """UTC, second precision, 'Z': the form Graph accepts and returns."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def days_left(end, now=None):
    """Days until end, a started day counting as one (9.99 -> 10); negative once expired (-0.1 -> -1)."""
    if end is None:
        return None
    seconds = (end - (now or utcnow())).total_seconds()
    return int(math.ceil(seconds / 86400.0)) if seconds > 0 else int(math.floor(seconds / 86400.0)) or -1


def user_time(value, option):
    try:
        return parse_time(value)
    except ValueError:
        raise ConfigError("%r is not a date" % (value,), option=option,
                          fix="use ISO 8601, for example 2027-05-31 or 2027-05-31T12:00:00Z")
