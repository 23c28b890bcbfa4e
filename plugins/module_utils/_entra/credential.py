# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""entra_app_credential logic: client secrets (with rotation), certificates, federated identity credentials.

Each ensure_* returns (changed, result). A secret value exists only in the addPassword answer: it is returned once,
in the result key `secret`, never in the diff or a message. Plain Python: no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.o365.smtp_oauth.plugins.module_utils._errors import (
    ConfigError, NotPropagatedError, ServiceError)
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.public_certificate import load_certificate, thumbprint_of
from ansible_collections.o365.smtp_oauth.plugins.module_utils._entra.dates import (
    days_left, format_time, parse_time, user_time, utcnow)

MAX_LIFETIME_DAYS = 730  # Microsoft's recommended maximum (and the portal's): two years
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"


def secret_view(cred, now=None):
    """A password credential as reported: never a value (Graph returns secretText only from addPassword)."""
    end = parse_time(cred.get("endDateTime"))
    return {"type": "secret", "key_id": cred.get("keyId"), "display_name": cred.get("displayName"),
            "hint": cred.get("hint"), "start": format_time(parse_time(cred.get("startDateTime"))),
            "end": format_time(end), "days_left": days_left(end, now)}


def certificate_view(cred, now=None):
    end = parse_time(cred.get("endDateTime"))
    return {"type": "certificate", "key_id": cred.get("keyId"), "display_name": cred.get("displayName"),
            "thumbprint": thumbprint_of(cred), "usage": cred.get("usage"),
            "start": format_time(parse_time(cred.get("startDateTime"))), "end": format_time(end),
            "days_left": days_left(end, now)}


def federated_view(cred):
    return {"type": "federated", "id": cred.get("id"), "name": cred.get("name"), "issuer": cred.get("issuer"),
            "subject": cred.get("subject"), "audiences": sorted(cred.get("audiences") or []),
            "description": cred.get("description")}


def end_of_lifetime(params, now):
    """The end date of a new credential from end_date or lifetime_days, checked against Microsoft's limits."""
    if params.get("end_date"):
        end = user_time(params["end_date"], "end_date")
        if end <= now:
            raise ConfigError("%s is in the past" % format_time(end), option="end_date",
                              fix="give a future date, or use lifetime_days")
        if end > now + datetime.timedelta(days=MAX_LIFETIME_DAYS):
            raise ConfigError("more than two years away", option="end_date",
                              fix="Microsoft recommends at most 2 years; rotate instead")
        return end
    lifetime = params.get("lifetime_days")
    if lifetime is None:
        lifetime = 180
    if lifetime < 1 or lifetime > MAX_LIFETIME_DAYS:
        raise ConfigError("must be between 1 and %d days, got %s" % (MAX_LIFETIME_DAYS, lifetime),
                          option="lifetime_days", fix="Microsoft recommends at most 2 years; rotate instead")
    return now + datetime.timedelta(days=lifetime)


class CredentialState(object):
    """One run of entra_app_credential against one app object."""

    def __init__(self, graph, app, params, check_mode=False, verify=None, now=None):
        self.graph = graph
        self.app = app
        self.params = params
        self.check_mode = check_mode
        self.verify = verify  # callable(secret_value) raising on failure, bounded by the caller
        self.now = now or utcnow()
        self.timeout = params["wait_timeout"]
        self.changes = []
        self.warnings = []
        self.verify_error = None

    def default_audience(self):
        """The audience Microsoft documents for federated credentials in the tenant's cloud."""
        cloud = getattr(self.graph, "cloud", None)
        return getattr(cloud, "federated_audience", None) or DEFAULT_AUDIENCE

    def _app_path(self, suffix=""):
        return "applications/%s%s" % (self.app["id"], suffix)

    def _lagging_write(self, write, what):
        return self.graph.retry_while_lagging(write, what, self.timeout)

    def _wait_for_credentials(self, collection, matches, what):
        """The app's credentials in collection that match, once a read shows any (within wait_timeout).
        Raises NotPropagatedError when none appears in time."""
        def read():
            app = self.graph.get_or_none(self._app_path())
            return [c for c in (app or {}).get(collection) or [] if matches(c)] or None
        return self.graph.wait_for(read, what, self.timeout)

    def _confirm_readable(self, collection, written, what):
        """Wait until a read of the app shows the credential just written. Graph's reads lag its writes by
        seconds: without this, the same task run again at once would not see it and add another."""
        try:
            self._wait_for_credentials(collection, written, what)
        except NotPropagatedError as error:
            # Never fail here: the credential exists (and a new secret's value is only in this result).
            self.warnings.append("%s; a run in the next minutes may not see it yet" % error.message)

    # -- secrets -----------------------------------------------------------------------------------
    def ensure_secret(self):
        p = self.params
        name = p.get("display_name") or "o365.smtp_oauth"
        ours = sorted((c for c in self.app.get("passwordCredentials") or [] if c.get("displayName") == name),
                      key=lambda c: (parse_time(c.get("endDateTime")) or self.now, c.get("keyId") or ""))
        if p.get("state") == "absent":
            gone = [c for c in ours if not p.get("key_id") or c.get("keyId") == p["key_id"]]
            for cred in gone:
                self.changes.append("remove secret %s" % cred.get("keyId"))
                if not self.check_mode:
                    self.graph.post(self._app_path("/removePassword"), json={"keyId": cred["keyId"]})
            kept = [c for c in ours if c not in gone]
            return self._secret_result(name, ours, kept, None)

        end = end_of_lifetime(p, self.now)
        if (p.get("retire_old_after") or 0) < 0:
            raise ConfigError("must be 0 or more days", option="retire_old_after")
        newest = ours[-1] if ours else None
        newest_end = parse_time(newest.get("endDateTime")) if newest else None
        rotate_before = p.get("rotate_before_days")
        rotate_before = 30 if rotate_before is None else rotate_before
        if rotate_before < 0 or end - self.now <= datetime.timedelta(days=rotate_before):
            # A new secret that is already due for rotation would be replaced on every run.
            raise ConfigError("%s days is not shorter than the new secret's lifetime (until %s)" % (
                rotate_before, format_time(end)), option="rotate_before_days",
                fix="use a rotate_before_days smaller than lifetime_days (or the time to end_date)")
        due = newest is None or days_left(newest_end, self.now) < rotate_before
        created = None
        after = list(ours)
        if due:
            self.changes.append("add secret (expires %s)" % format_time(end) if newest is None else
                                "rotate: add a secret (the newest expires %s)" % format_time(newest_end))
            if self.check_mode:
                created = {"keyId": None, "displayName": name, "startDateTime": format_time(self.now),
                           "endDateTime": format_time(end)}
            else:
                created = self._add_password(name, end, known=set(c.get("keyId") for c in ours))
                self._confirm_readable("passwordCredentials", lambda c: c.get("keyId") == created.get("keyId"),
                                       "the new secret %s" % created.get("keyId"))
            after.append(created)
            if self.verify and not self.check_mode:
                self.verify_error = self.verify(created.get("secretText"))
        after = self._retire_old(after)
        return self._secret_result(name, ours, after, created)

    def _add_password(self, name, end, known):
        """addPassword; when its answer is lost, the secret it may have created (whose value nobody will ever see)
        is found, removed and replaced, so the run still returns one usable value and leaves no orphan."""
        body = {"passwordCredential": {"displayName": name, "endDateTime": format_time(end)}}

        def add():
            return self.graph.post(self._app_path("/addPassword"), json=body)
        what = "the secret of %s" % self.app.get("appId")
        try:
            return self._lagging_write(add, what)
        except ServiceError as error:
            if error.status is not None or (error.details or {}).get("nothing_sent"):
                raise
            lost = error
        self.changes.append("the answer to addPassword was lost: removing the secret it may have created")
        orphans = self._find_new_secrets(name, known)
        for cred in orphans:
            self.graph.post(self._app_path("/removePassword"), json={"keyId": cred["keyId"]})
        if not orphans:
            raise ServiceError("addPassword's answer was lost and no new secret appeared within %s s, so none could "
                               "be cleaned up: %s" % (self.timeout, lost.message), code=lost.code,
                               request_id=lost.request_id, option="wait_timeout",
                               fix="run the task again; then remove any secret named %r that you did not receive "
                                   "(entra_app_credential state=absent key_id=...)" % name)
        return self._lagging_write(add, what)

    def _find_new_secrets(self, name, known):
        try:
            return self._wait_for_credentials(
                "passwordCredentials", lambda c: c.get("displayName") == name and c.get("keyId") not in known,
                "the secret added by a request whose answer was lost")
        except NotPropagatedError:
            return []

    def _retire_old(self, creds):
        """Keep older secrets until the newest is retire_old_after days old (overlap for the consumers)."""
        if len(creds) < 2:
            return creds
        newest = creds[-1]
        retire_after = self.params.get("retire_old_after")
        retire_after = 7 if retire_after is None else retire_after
        newest_start = parse_time(newest.get("startDateTime")) or self.now
        overlap_over = self.now - newest_start >= datetime.timedelta(days=retire_after)
        kept = [newest]
        for cred in creds[:-1]:
            expired = (parse_time(cred.get("endDateTime")) or self.now) <= self.now
            if overlap_over or expired:
                self.changes.append("retire secret %s" % cred.get("keyId"))
                if not self.check_mode:
                    self.graph.post(self._app_path("/removePassword"), json={"keyId": cred["keyId"]})
            else:
                kept.append(cred)
        return sorted(kept, key=lambda c: (parse_time(c.get("endDateTime")) or self.now, c.get("keyId") or ""))

    def _secret_result(self, name, before, after, created):
        result = {"type": "secret", "display_name": name,
                  "credentials": [secret_view(c, self.now) for c in after],
                  "diff": {"before": {"secrets": [secret_view(c, self.now) for c in before]},
                           "after": {"secrets": [secret_view(c, self.now) for c in after]}}}
        if created is not None:
            result.update(key_id=created.get("keyId"), hint=created.get("hint"), end=created.get("endDateTime"))
            if created.get("secretText"):
                result["secret"] = created["secretText"]
            if self.verify:
                result["verified"] = self.verify_error is None and not self.check_mode
                if self.verify_error:
                    result["verify_error"] = self.verify_error
        return bool(self.changes), result

    # -- certificates ------------------------------------------------------------------------------
    def ensure_certificate(self):
        p = self.params
        current = list(self.app.get("keyCredentials") or [])
        given = p.get("public_certificate_path") or p.get("public_certificate_content")
        if p.get("state") == "absent" and p.get("thumbprint") and not given:
            thumbprint = p["thumbprint"].replace(":", "").upper()
            cert = None
        elif given:
            cert = load_certificate(p.get("public_certificate_path"), p.get("public_certificate_content"))
            thumbprint = cert.thumbprint
        else:
            raise ConfigError("a certificate is required to add one (thumbprint only removes)",
                              option="public_certificate_path",
                              fix="give public_certificate_path or public_certificate_content")
        matching = [c for c in current if thumbprint_of(c) == thumbprint]
        if p.get("state") == "absent":
            after = [c for c in current if c not in matching]
            if matching:
                self.changes.append("remove certificate %s" % thumbprint)
                if not self.check_mode:
                    self.graph.patch(self._app_path(), json={"keyCredentials": [_keep(c) for c in after]})
            return self._certificate_result(thumbprint, current, after, None)
        if cert.not_after <= self.now:
            raise ConfigError("the certificate %s expired on %s" % (thumbprint, format_time(cert.not_after)),
                              option="public_certificate_path" if p.get("public_certificate_path")
                              else "public_certificate_content",
                              fix="issue a new certificate")
        if matching:
            return self._certificate_result(thumbprint, current, current, None)
        new = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.key_b64,
               "displayName": p.get("display_name") or "CN=%s" % cert.subject.split("CN=")[-1].split(",")[0],
               "customKeyIdentifier": cert.custom_key_identifier,
               "startDateTime": format_time(cert.not_before), "endDateTime": format_time(cert.not_after)}
        self.changes.append("add certificate %s (expires %s)" % (thumbprint, format_time(cert.not_after)))
        after = current + [new]
        if not self.check_mode:
            # Graph replaces the whole collection: existing keys are sent back as read (by keyId), plus the new one.
            body = {"keyCredentials": [_keep(c) for c in current] + [new]}
            self._lagging_write(lambda: self.graph.patch(self._app_path(), json=body),
                                "the certificate of %s" % self.app.get("appId"))
            self._confirm_readable("keyCredentials", lambda c: thumbprint_of(c) == thumbprint,
                                   "the certificate %s" % thumbprint)
        return self._certificate_result(thumbprint, current, after, new)

    def _certificate_result(self, thumbprint, before, after, new):
        result = {"type": "certificate", "thumbprint": thumbprint,
                  "credentials": [certificate_view(c, self.now) for c in after],
                  "diff": {"before": {"certificates": sorted(filter(None, (thumbprint_of(c) for c in before)))},
                           "after": {"certificates": sorted(filter(None, (thumbprint_of(c) for c in after)))}}}
        if new:
            result["end"] = new["endDateTime"]
        return bool(self.changes), result

    # -- federated identity credentials ------------------------------------------------------------
    def ensure_federated(self):
        p = self.params
        if not p.get("name"):
            raise ConfigError("required for type=federated", option="name",
                              fix="name the credential, for example github-main")
        current = self.graph.list(self._app_path("/federatedIdentityCredentials"))
        existing = next((c for c in current if c.get("name") == p["name"]), None)
        before = federated_view(existing) if existing else {}
        if p.get("state") == "absent":
            if existing:
                self.changes.append("remove federated credential %s" % p["name"])
                if not self.check_mode:
                    self.graph.delete(self._app_path("/federatedIdentityCredentials/%s" % existing["id"]))
            return bool(self.changes), {"type": "federated", "name": p["name"],
                                        "diff": {"before": before, "after": {}}}
        for option in ("issuer", "subject"):
            if not p.get(option):
                raise ConfigError("required for type=federated", option=option,
                                  fix="for GitHub Actions: issuer https://token.actions.githubusercontent.com, "
                                      "subject repo:ORG/REPO:ref:refs/heads/main")
        desired = {"issuer": p["issuer"], "subject": p["subject"],
                   "audiences": sorted(p.get("audiences") or [self.default_audience()])}
        if p.get("description") is not None:
            desired["description"] = p["description"]
        if existing:
            patch = dict((k, v) for k, v in desired.items()
                         if (sorted(existing.get(k) or []) if k == "audiences" else existing.get(k)) != v)
            if patch:
                self.changes.append("update federated credential %s: %s" % (p["name"], ", ".join(sorted(patch))))
                if not self.check_mode:
                    self.graph.patch(self._app_path("/federatedIdentityCredentials/%s" % existing["id"]), json=patch)
            after = dict(existing)
            after.update(patch)
        else:
            self.changes.append("add federated credential %s" % p["name"])
            body = dict(desired, name=p["name"])
            after = body
            if not self.check_mode:
                after = self._lagging_write(lambda: self._create_federated(body),
                                            "the federated credential of %s" % self.app.get("appId"))
        view = federated_view(after)
        return bool(self.changes), {"type": "federated", "name": p["name"], "id": after.get("id"),
                                    "credential": view, "diff": {"before": before, "after": view}}

    def _create_federated(self, body):
        try:
            return self.graph.post(self._app_path("/federatedIdentityCredentials"), json=body)
        except ServiceError as error:
            if error.status == 409:  # a repeat of a create whose answer was lost: read what exists
                found = [c for c in self.graph.list(self._app_path("/federatedIdentityCredentials"))
                         if c.get("name") == body["name"]]
                if found:
                    return found[0]
            raise


def _keep(cred):
    """An existing keyCredential as sent back to Graph (identity fields only; the key is not readable)."""
    return dict((k, v) for k, v in cred.items() if k in ("keyId", "type", "usage", "displayName", "key",
                                                         "customKeyIdentifier", "startDateTime", "endDateTime"))
