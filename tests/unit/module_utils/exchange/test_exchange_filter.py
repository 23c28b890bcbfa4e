"""OPATH recipient filters compare by meaning: Exchange prints a scope's filter in its own spelling."""

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.access import scope_filter
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.filters import canonical, same_filter
from ansible_collections.o365.smtp_oauth.plugins.module_utils._exchange.principal import PrincipalForms

WRITTEN = scope_filter(["b@contoso.com", "a@contoso.com", "o'neil@contoso.com"])


@pytest.mark.parametrize("printed", [
    WRITTEN,
    "((PrimarySmtpAddress -eq 'a@contoso.com') -or (PrimarySmtpAddress -eq 'b@contoso.com') -or "
    "(PrimarySmtpAddress -eq 'o''neil@contoso.com'))",
    "(((primarysmtpaddress -EQ \"B@contoso.com\") -or (PrimarySmtpAddress -eq 'a@contoso.com')) -or "
    "(PrimarySmtpAddress -eq 'O''Neil@contoso.com'))",
])
def test_exchange_spellings_of_the_same_filter_are_the_same(printed):
    assert same_filter(WRITTEN, printed)


@pytest.mark.parametrize("other", [
    scope_filter(["a@contoso.com", "b@contoso.com"]),
    scope_filter(["a@contoso.com", "b@contoso.com", "c@contoso.com", "o'neil@contoso.com"]),
    "(PrimarySmtpAddress -ne 'a@contoso.com') -or (PrimarySmtpAddress -eq 'b@contoso.com') -or "
    "(PrimarySmtpAddress -eq 'o''neil@contoso.com')",
    "(PrimarySmtpAddress -eq 'a@contoso.com') -and (PrimarySmtpAddress -eq 'b@contoso.com') -and "
    "(PrimarySmtpAddress -eq 'o''neil@contoso.com')",
    None,
    "this is (not OPATH",
])
def test_different_filters_differ(other):
    assert not same_filter(WRITTEN, other)


def test_text_that_cannot_be_parsed_compares_as_itself():
    assert canonical("  x (( ") == ("text", "x ((") and same_filter("x ((", " x ((")


def test_a_principal_is_recognised_in_every_printed_form():
    forms = PrincipalForms("App-Id", "SP-Id", "Relay", [{"ObjectId": "SP-Id", "Name": "SP-Id", "Sid": "S-1-5-21-1"}])
    assert all(forms.names(v) for v in ("app-id", "sp-id", "relay", "S-1-5-21-1"))
    assert not forms.names("NT AUTHORITY\\SELF") and not forms.names("") and not forms.names(None)
    assert forms.assigned({"RoleAssignee": "x", "RoleAssigneeName": "Relay"})
    shared = PrincipalForms("App-Id", "SP-Id", "Relay").exclude([{"ObjectId": "app-object", "DisplayName": "Relay"}])
    assert not shared.names("Relay") and shared.names("SP-Id")
