"""The sending budgets per login checked by the role through ansible-playbook (tasks/validate.yml), before anything
is installed: a message budget below 0 or a recipient budget Postfix's deliveries cannot fit stops the play naming
the variables; a budget given in part passes (the rest keeps its default)."""

import pytest
from helpers.playbook import run_playbook
from test_platform import ENV, VARS, play

CHECK = "o365.smtp_oauth.relay : The sending budgets per login are 0 (unlimited) or counts the proxy can keep"


def validate(**budgets):
    tasks = play("Debian", "trixie", "13.2", tasks_from="validate")
    tasks[1]["vars"] = dict(VARS, **budgets)
    return run_playbook(tasks, env=ENV)


@pytest.mark.parametrize("budgets", [
    {"relay_login_message_limit": {"hour": -1, "day": 1000}},
    {"relay_login_recipient_limit": {"hour": 10}},
])
def test_budgets_that_cannot_work_stop_the_play_naming_the_variables(budgets):
    run = validate(**budgets)
    assert run.rc != 0, run.output
    failed = run.task(CHECK)
    assert failed["failed"], run.output
    assert "relay_login_message_limit (hour, day) must be 0 (unlimited) or more" in failed["msg"]
    assert "relay_login_recipient_limit (hour, day) 0 or at least 50" in failed["msg"]


def test_a_budget_given_in_part_or_switched_off_passes():
    run = validate(relay_login_message_limit={"day": 0}, relay_login_recipient_limit={"hour": 50})
    assert run.rc == 0, run.output
    assert run.task(CHECK)["failed"] is False, run.output
