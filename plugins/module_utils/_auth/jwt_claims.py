# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the claims of an access token to explain a refusal (wrong aud, missing role, wrong tenant, expiry).

No signature check: the service that receives the token checks it. These claims are for diagnosis only and
never decide whether a token is trusted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json


class ClaimsError(ValueError):
    """The text is not a JWT whose payload is a JSON object (the message never contains the token)."""


def _b64url_decode(part):
    part = part.strip()
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_claims(token):
    """Return the token's payload as a dict, unverified. Raises ClaimsError for anything that is not a JWT."""
    if not isinstance(token, str):
        raise ClaimsError("an access token must be text")
    parts = token.strip().split(".")
    # JWS has three parts; an encrypted JWE (five) cannot be read without the resource's key.
    if len(parts) == 5:
        raise ClaimsError("the token is encrypted (JWE); its claims cannot be read")
    if len(parts) != 3 or not parts[1]:
        raise ClaimsError("not a JWT (expected three dot-separated parts)")
    try:
        claims = json.loads(_b64url_decode(parts[1]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ClaimsError("the JWT payload is not base64url-encoded JSON")
    if not isinstance(claims, dict):
        raise ClaimsError("the JWT payload is not a JSON object")
    return claims


def expires_on(token):
    """The token's exp as epoch seconds, or None when it cannot be read."""
    try:
        exp = decode_claims(token).get("exp")
    except ClaimsError:
        return None
    return int(exp) if isinstance(exp, (int, float)) else None
