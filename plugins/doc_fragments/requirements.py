# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The Python libraries every module needs where it runs; keep in step with module_utils/_requirements.py,
    # which names every missing one in a single error.
    DOCUMENTATION = r"""
options: {}
requirements:
  - python >= 3.8 on the host that runs the module (usually the controller, C(localhost))
  - msal >= 1.24 (client secret and certificate credentials)
  - requests >= 2.25 (Microsoft Graph, the Exchange admin API, the identity platform)
  - cryptography >= 3.4 (certificate credentials)
  - azure-identity >= 1.15, only for managed identity, workload identity (O(federated_token_file)) and O(azure_cli)
"""
