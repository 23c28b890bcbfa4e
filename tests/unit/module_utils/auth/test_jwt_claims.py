"""_jwt_claims: reading a token's claims for diagnosis (no signature check), never echoing the token."""

import base64
import json
import time

import jwt
import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._auth.jwt_claims import (
    ClaimsError, decode_claims, expires_on)


def make_token(**claims):
    # A real RS256-shaped JWT signed with an HMAC key: decode_claims must not care about the signature.
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def test_reads_the_diagnostic_claims():
    exp = int(time.time()) + 3000
    token = make_token(aud="https://outlook.office365.com", tid="t-1", appid="a-1", roles=["SMTP.SendAsApp"], exp=exp,
                       extra="kept")
    claims = decode_claims(token)
    assert claims["aud"] == "https://outlook.office365.com" and claims["roles"] == ["SMTP.SendAsApp"]
    assert claims["extra"] == "kept"
    assert expires_on(token) == exp


def test_signature_is_not_checked_but_payload_must_be_json():
    token = make_token(aud="x")
    header, payload, _sig = token.split(".")
    assert decode_claims(header + "." + payload + ".AAAA")["aud"] == "x"
    assert decode_claims(header + "." + payload + ".")["aud"] == "x"  # unsigned (alg none) still readable


@pytest.mark.parametrize("text, reason", [
    ("not-a-token", "three"),
    ("a.b", "three"),
    ("a..c", "three"),
    ("eyJhbGciOiJub25lIn0.!!!.x", "base64url"),
    ("eyJhbGciOiJub25lIn0.%s.x" % base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("="), "object"),
    ("a.b.c.d.e", "encrypted"),
])
def test_bad_tokens_raise_claims_error_without_the_token(text, reason):
    with pytest.raises(ClaimsError) as info:
        decode_claims(text)
    assert reason in str(info.value)
    assert text not in str(info.value)


def test_non_text_and_missing_exp():
    with pytest.raises(ClaimsError):
        decode_claims(None)
    assert expires_on("garbage") is None
    assert expires_on(make_token(aud="x")) is None
    payload = base64.urlsafe_b64encode(json.dumps({"exp": "soon"}).encode()).decode().rstrip("=")
    assert expires_on("e30.%s.x" % payload) is None
