"""Directory objects of the emulated Graph: what clients may write, how Graph prints them, and the checks Graph
applies to writes (property names, immutable keys, credentials). Plain functions over the tenant's dicts; the
HTTP side is in graph_api.py. Errors raise GraphError with Graph's codes and texts.
"""

import base64
import hashlib
import secrets
import time
import uuid

from emulator.certs import load_key_credential
from emulator.state import iso, parse_iso

TWO_YEARS = 2 * 365 * 86400


class GraphError(Exception):
    def __init__(self, status, code, message, headers=None):
        super(GraphError, self).__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def not_found(key):
    return GraphError(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried "
                                                       "reference-property objects are not present." % key)


def conflict(prop):
    return GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "Another object with the same value for "
                                                                      "property %s already exists." % prop)


def bad_request(message, code="Request_BadRequest"):
    return GraphError(400, code, message)


# Properties as Graph v1.0 prints them (order kept), and the ones a client may write.
ROLE_ASSIGNMENT_FIELDS = ("id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId", "condition",
                          "principalOrganizationId")
APP_FIELDS = ("id", "deletedDateTime", "appId", "createdDateTime", "displayName", "description", "notes",
              "uniqueName", "signInAudience", "tags", "identifierUris", "publisherDomain", "groupMembershipClaims",
              "isFallbackPublicClient", "serviceManagementReference", "tokenEncryptionKeyId", "api", "appRoles",
              "info", "optionalClaims", "publicClient", "spa", "web", "requiredResourceAccess",
              "passwordCredentials", "keyCredentials", "parentalControlSettings", "verifiedPublisher")
APP_WRITABLE = frozenset(("displayName", "description", "notes", "uniqueName", "signInAudience", "tags",
                          "identifierUris", "groupMembershipClaims", "isFallbackPublicClient",
                          "serviceManagementReference", "tokenEncryptionKeyId", "api", "appRoles", "info",
                          "optionalClaims", "publicClient", "spa", "web", "requiredResourceAccess",
                          "keyCredentials", "parentalControlSettings"))
SP_FIELDS = ("id", "deletedDateTime", "accountEnabled", "appDisplayName", "appId", "appOwnerOrganizationId",
             "appRoleAssignmentRequired", "createdDateTime", "description", "displayName", "homepage", "notes",
             "servicePrincipalNames", "servicePrincipalType", "signInAudience", "tags", "alternativeNames",
             "appRoles", "oauth2PermissionScopes", "keyCredentials", "passwordCredentials", "replyUrls")
SP_WRITABLE = frozenset(("accountEnabled", "appRoleAssignmentRequired", "description", "displayName", "homepage",
                         "notes", "tags", "alternativeNames", "replyUrls", "appRoles", "oauth2PermissionScopes",
                         "servicePrincipalNames"))
FIC_FIELDS = ("id", "name", "issuer", "subject", "description", "audiences")
FIC_WRITABLE = frozenset(("name", "issuer", "subject", "description", "audiences"))
USER_FIELDS = ("id", "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
               "officeLocation", "preferredLanguage", "surname", "userPrincipalName")
ASSIGNMENT_FIELDS = ("id", "deletedDateTime", "appRoleId", "createdDateTime", "principalDisplayName",
                     "principalId", "principalType", "resourceDisplayName", "resourceId")
LIST_DEFAULTS = ("tags", "identifierUris", "appRoles", "requiredResourceAccess", "passwordCredentials",
                 "keyCredentials", "servicePrincipalNames", "alternativeNames", "oauth2PermissionScopes", "replyUrls")


# -- views -----------------------------------------------------------------------------------------------------
def password_view(cred):
    return {"customKeyIdentifier": cred.get("customKeyIdentifier"), "displayName": cred.get("displayName"),
            "endDateTime": cred.get("endDateTime"), "hint": cred.get("hint"), "keyId": cred.get("keyId"),
            "secretText": None, "startDateTime": cred.get("startDateTime")}


def key_view(cred):
    return {"customKeyIdentifier": cred.get("customKeyIdentifier"), "displayName": cred.get("displayName"),
            "endDateTime": cred.get("endDateTime"), "key": None, "keyId": cred.get("keyId"),
            "startDateTime": cred.get("startDateTime"), "type": cred.get("type"), "usage": cred.get("usage")}


def view(obj, fields, visible=None):
    """obj as Graph prints it: its type's properties only, credentials without secret or key material.
    visible(cred) hides credentials that have not replicated yet."""
    out = {}
    for name in fields:
        value = obj.get(name)
        if value is None and name in LIST_DEFAULTS:
            value = []
        if name == "passwordCredentials":
            value = [password_view(c) for c in value if visible is None or visible(c)]
        elif name == "keyCredentials":
            value = [key_view(c) for c in value if visible is None or visible(c)]
        out[name] = value
    return out


# -- write checks ----------------------------------------------------------------------------------------------
def check_properties(body, writable, type_name, read_only=()):
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                            "header is set and payload is of valid JSON format.")
    for name in body:
        if name.startswith("@odata."):
            continue
        if name in read_only:
            raise bad_request("Property '%s' is read-only and cannot be set." % name)
        if name not in writable:
            # graph_contract has refused names the type does not have: this one is Graph's, not modelled here.
            raise GraphError(501, "EmulatorNotImplemented", "The emulated Graph does not model writing '%s' of "
                                                            "'microsoft.graph.%s'." % (name, type_name))
    for name in ("tags", "identifierUris", "requiredResourceAccess", "audiences"):
        if name in body and not isinstance(body[name], list):
            raise bad_request("Invalid value specified for property '%s' of resource '%s'."
                              % (name, type_name[0].upper() + type_name[1:]))


def check_application_body(body, existing=None):
    check_properties(body, APP_WRITABLE, "application",
                     read_only=("id", "appId", "createdDateTime", "publisherDomain", "passwordCredentials"))
    if "displayName" in body and not (isinstance(body["displayName"], str) and body["displayName"].strip()):
        raise bad_request("Invalid value specified for property 'displayName' of resource 'Application'.")
    if "uniqueName" in body:
        value = body["uniqueName"]
        if existing is not None and existing.get("uniqueName") and value != existing["uniqueName"]:
            raise bad_request("Property 'uniqueName' is immutable and cannot be changed once set.")
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise bad_request("Invalid value specified for property 'uniqueName' of resource 'Application'.")
    audience = body.get("signInAudience")
    if audience is not None and audience not in ("AzureADMyOrg", "AzureADMultipleOrgs",
                                                 "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"):
        raise bad_request("Invalid value specified for property 'signInAudience' of resource 'Application'.")
    for entry in body.get("requiredResourceAccess") or ():
        if not isinstance(entry, dict) or not entry.get("resourceAppId") or not isinstance(
                entry.get("resourceAccess", []), list):
            raise bad_request("Invalid value specified for property 'requiredResourceAccess' of resource "
                              "'Application'.")
        for access in entry.get("resourceAccess") or ():
            if not isinstance(access, dict) or access.get("type") not in ("Role", "Scope") or not access.get("id"):
                raise bad_request("Invalid value specified for property 'resourceAccess' of resource "
                                  "'RequiredResourceAccess'.")


def merge_key_credentials(current, wanted):
    """Graph's keyCredentials PATCH: the list sent replaces the list held; an existing key is referenced by its
    keyId without `key`, a new one carries `key` (base64 certificate) and gets its dates and thumbprint from it."""
    if not isinstance(wanted, list):
        raise bad_request("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
    by_id = dict((c.get("keyId"), c) for c in current)
    out, seen = [], set()
    for entry in wanted:
        if not isinstance(entry, dict):
            raise bad_request("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
        key_id = entry.get("keyId")
        if key_id in seen:
            raise bad_request("Key credential keyId '%s' is specified more than once." % key_id)
        if not entry.get("key"):
            if key_id not in by_id:
                raise bad_request("Existing credential with KeyId '%s' is not found." % key_id
                                  if key_id else "Key credential 'key' is required for a new key credential.")
            seen.add(key_id)
            out.append(by_id[key_id])
            continue
        out.append(new_key_credential(entry, key_id if key_id not in by_id else None))
        seen.add(out[-1]["keyId"])
    thumbs = [c.get("customKeyIdentifier") for c in out]
    if len(set(thumbs)) != len(thumbs):
        raise bad_request("Key credential with the same thumbprint is already present on the application.",
                          code="Request_BadRequest")
    return out


def new_key_credential(entry, key_id=None):
    if entry.get("type") != "AsymmetricX509Cert":
        raise bad_request("Invalid value specified for property 'type' of resource 'KeyCredential'.")
    if entry.get("usage") != "Verify":
        raise bad_request("Invalid value specified for property 'usage' of resource 'KeyCredential'.")
    cert = load_key_credential(entry["key"])
    if cert is None:
        raise bad_request("Invalid value specified for property 'key' of resource 'KeyCredential'.")
    from cryptography.hazmat.primitives import serialization
    der = cert.public_bytes(serialization.Encoding.DER)
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    if end <= time.time():
        raise bad_request("Key credential end date is invalid: the certificate has expired.")
    return {"customKeyIdentifier": entry.get("customKeyIdentifier")
            or base64.b64encode(hashlib.sha1(der).digest()).decode(),
            "displayName": entry.get("displayName") or cert.subject.rfc4514_string(),
            "endDateTime": iso(end), "key": base64.b64encode(der).decode(), "keyId": key_id or str(uuid.uuid4()),
            "startDateTime": iso(start), "type": "AsymmetricX509Cert", "usage": "Verify", "_created": time.time(),
            "_written": time.time()}  # written through the API: hidden from reads until replicated


def new_password(spec):
    """addPassword: the server picks keyId and secret; the client may set displayName and the dates."""
    spec = spec if isinstance(spec, dict) else {}
    now = time.time()
    start = parse_iso(spec.get("startDateTime")) if spec.get("startDateTime") else now
    end = parse_iso(spec.get("endDateTime")) if spec.get("endDateTime") else start + TWO_YEARS
    if start is None or end is None:
        raise bad_request("Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.")
    if end <= start:
        raise bad_request("Key credential end date must be later than start date.")
    secret = secrets.token_urlsafe(30)[:3] + "8Q~" + secrets.token_urlsafe(30)[:34]
    return {"customKeyIdentifier": None, "displayName": spec.get("displayName"), "endDateTime": iso(end),
            "hint": secret[:3], "keyId": str(uuid.uuid4()), "secretText": None, "startDateTime": iso(start),
            "_secretText": secret, "_created": now}


def check_fic(body, siblings, current=None):
    check_properties(body, FIC_WRITABLE, "federatedIdentityCredential", read_only=("id",))
    merged = dict(current or {})
    merged.update(body)
    for name in ("name", "issuer", "subject"):
        if not (isinstance(merged.get(name), str) and merged[name].strip()):
            raise bad_request("Invalid value specified for property '%s' of resource "
                              "'FederatedIdentityCredential'." % name)
    if not merged.get("audiences") or len(merged["audiences"]) != 1:
        raise bad_request("Invalid value specified for property 'audiences' of resource "
                          "'FederatedIdentityCredential'. Exactly one audience is required.")
    if current is not None and "name" in body and body["name"] != current["name"]:
        raise bad_request("Property 'name' is immutable and cannot be changed once set.")
    for other in siblings:
        if other is current:
            continue
        if other["name"].lower() == merged["name"].lower():
            raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue",
                             "FederatedIdentityCredential with name %s already exists." % merged["name"])
        if other["issuer"] == merged["issuer"] and other["subject"] == merged["subject"]:
            raise bad_request("The combination of issuer and subject must be unique for the application. Issuer "
                              "%s and Subject: %s already exist." % (merged["issuer"], merged["subject"]),
                              code="InvalidFederatedIdentityCredentialValue")
    if current is None and len(siblings) >= 20:
        raise bad_request("An application can have at most 20 federated identity credentials.")
    return merged


def drop_service_principal(tenant, sp):
    """Delete an SP and every app role assignment it gives or holds (what Graph does on delete)."""
    for key, assignment in list(tenant.app_role_assignments.items()):
        if sp["id"] in (assignment.get("principalId"), assignment.get("resourceId")):
            del tenant.app_role_assignments[key]
    tenant.service_principals.pop(sp["id"], None)


def assignment_id():
    """Graph's appRoleAssignment ids are 43-character base64url strings, not GUIDs."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
