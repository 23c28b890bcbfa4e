"""_message: validation before connecting, MIME structure, header injection refused."""

import email
import email.policy

import pytest

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import ConfigError
from ansible_collections.o365.smtp_oauth.plugins.module_utils._smtp.message import build_message


def parse(built):
    return email.message_from_bytes(built.data, policy=email.policy.default)


def base(**kw):
    spec = {"sender": "Deploy Bot <deploy@contoso.com>", "to": ["Ops <ops@contoso.com>"], "subject": "Done"}
    spec.update(kw)
    return spec


def test_plain_message_headers_and_envelope():
    built = build_message(base(body="All hosts updated.", cc=["cc@contoso.com"], bcc=["hidden@contoso.com"]))
    msg = parse(built)
    assert msg["From"] == "Deploy Bot <deploy@contoso.com>"
    assert msg["To"] == "Ops <ops@contoso.com>"
    assert msg["Cc"] == "cc@contoso.com"
    assert "Bcc" not in msg and b"hidden@contoso.com" not in built.data
    assert built.envelope_from == "deploy@contoso.com"
    assert built.recipients == ["ops@contoso.com", "cc@contoso.com", "hidden@contoso.com"]
    assert msg["Message-ID"] == built.message_id and built.message_id.endswith("@contoso.com>")
    assert msg.get_content().strip() == "All hosts updated."
    assert b"\r\n" in built.data and b"\n" not in built.data.replace(b"\r\n", b"")


def test_body_defaults_to_subject_like_community_general_mail():
    assert parse(build_message(base())).get_content().strip() == "Done"


def test_html_with_text_alternative_and_non_ascii_is_7bit_clean():
    built = build_message(base(subject="Résumé", body="Grüße", body_html="<p>Grüße</p>"))
    msg = parse(built)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert msg["Subject"] == "Résumé"
    built.data.decode("ascii")  # works with servers without 8BITMIME


def test_attachment(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 binary \x00\xff")
    msg = parse(build_message(base(attach=[str(path)])))
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["report.pdf"]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_content() == b"%PDF-1.4 binary \x00\xff"


@pytest.mark.parametrize("spec, option", [
    (base(subject="Hi\r\nBcc: victim@example.com"), "subject"),
    (base(to=["ops@contoso.com\r\nBcc: victim@example.com"]), "to"),
    (base(sender="deploy@contoso.com\nBcc: x@example.com"), "sender"),
    (base(headers={"X-Run": "1\r\nBcc: victim@example.com"}), "headers.X-Run"),
    (base(headers=["X-Run=1\nBcc: victim@example.com"]), "headers.X-Run"),
])
def test_header_injection_is_refused_naming_the_option(spec, option):
    with pytest.raises(ConfigError) as exc:
        build_message(spec)
    assert exc.value.option == option
    assert "line break" in exc.value.message


@pytest.mark.parametrize("spec, option", [
    (base(to=["not-an-address"]), "to"),
    (base(cc=["a@"]), "cc"),
    (base(sender=None), "sender"),
    (base(to=[], cc=[], bcc=[]), "to"),
    (base(subtype="markdown"), "subtype"),
    (base(charset="klingon"), "charset"),
    (base(headers={"Subject": "other"}), "headers"),
    (base(headers={"Bad Name": "x"}), "headers"),
    (base(attach=["/nonexistent/file.pdf"]), "attach"),
    (base(to=["j\u00f6rg@example.com"]), "to"),           # no SMTPUTF8: envelope addresses are ASCII
    (base(sender="Ops <b\u00fcro@example.com>"), "sender"),
])
def test_bad_input_names_the_option(spec, option):
    with pytest.raises(ConfigError) as exc:
        build_message(spec)
    assert exc.value.option == option


def test_prefix_names_the_message_in_a_bulk_run():
    with pytest.raises(ConfigError) as exc:
        build_message(base(to=["nope"]), option_prefix="messages[3].")
    assert exc.value.option == "messages[3].to"


def test_size_limit_before_connecting(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * 200000)
    with pytest.raises(ConfigError) as exc:
        build_message(base(attach=[str(path)]), max_size=100000)
    assert exc.value.option == "attach" and "over the limit" in exc.value.message


def test_custom_headers_and_message_id():
    built = build_message(base(headers=["X-Run=42", "Message-ID=<fixed@contoso.com>"], reply_to=["Help <help@contoso.com>"]))
    msg = parse(built)
    assert msg["X-Run"] == "42"
    assert built.message_id == "<fixed@contoso.com>" == msg["Message-ID"]
    assert msg["Reply-To"] == "Help <help@contoso.com>"


def test_duplicate_recipients_get_one_copy():
    built = build_message(base(to=["a@contoso.com", "A@contoso.com"], bcc=["a@contoso.com", "b@contoso.com"]))
    assert built.recipients == ["a@contoso.com", "b@contoso.com"]


def test_a_display_name_may_hold_any_characters():
    built = build_message(base(to=["J\u00f6rg M\u00fcller <jorg@example.com>"]))
    assert built.recipients == ["jorg@example.com"]
    assert "J\u00f6rg M\u00fcller" in str(email.message_from_bytes(built.data, policy=email.policy.default)["To"])
