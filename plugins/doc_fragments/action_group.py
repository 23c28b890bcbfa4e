# -*- coding: utf-8 -*-
# Copyright: o365.smtp_oauth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # meta/runtime.yml action_groups: every module is in the group o365.
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/o365.smtp_oauth.o365) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - o365.smtp_oauth.o365
"""
