# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only module: sets the platform facts a role reads (distribution, release, version) to the given ones,
so a playbook on this machine meets the relay role's platform check as another system would (no such system
can run here: the check reads facts, and facts are what this fakes)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(
        distribution=dict(type="str", required=True),
        release=dict(type="str", required=True),
        version=dict(type="str", required=True),
    ))
    params = module.params
    module.exit_json(changed=False, ansible_facts=dict(
        distribution=params["distribution"], distribution_release=params["release"],
        distribution_version=params["version"], distribution_major_version=params["version"].split(".")[0],
        os_family="Debian" if params["distribution"] in ("Debian", "Ubuntu") else params["distribution"]))


if __name__ == "__main__":
    main()
