# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft Entra built-in directory roles by name and template id, and what a signed-in admin must hold to
bootstrap the admin app.

Template ids are the ones Microsoft's "Microsoft Entra built-in roles" page lists; they are the same in every
tenant and cloud, and delegated tokens carry them in `wids`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ROLES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Exchange Recipient Administrator": "31392ffb-586c-42d1-9346-e59415a2cc4e",
}
NAMES = dict((v, k) for k, v in ROLES.items())

# Bootstrapping creates an app (Application or Cloud Application Administrator), grants it Microsoft Graph and
# Exchange application permissions and assigns it a directory role (both Privileged Role Administrator): a Global
# Administrator holds all of it.
BOOTSTRAP_ALTERNATIVES = (("Global Administrator",),
                          ("Privileged Role Administrator", "Application Administrator"),
                          ("Privileged Role Administrator", "Cloud Application Administrator"))


def role_names(wids):
    """Names of the template ids in a token's `wids` (unknown ids as they are), sorted."""
    return sorted(NAMES.get(str(w).lower(), str(w)) for w in wids or ())


def missing_for_bootstrap(wids):
    """None when `wids` allow the bootstrap, else a sentence naming the roles needed."""
    held = set(role_names(wids))
    if any(set(option) <= held for option in BOOTSTRAP_ALTERNATIVES):
        return None
    return "Global Administrator, or Privileged Role Administrator together with Application Administrator (or " \
           "Cloud Application Administrator)"
