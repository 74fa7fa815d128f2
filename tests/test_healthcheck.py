"""Healthchecks: --health-* and the image's HEALTHCHECK, run by the container's monitor
through `exec`, seen in `inspect`, `ps` and `ps -f health=`."""

from __future__ import annotations

import json

import pytest
from helpers import assert_error, ok, wait_for

pytestmark = pytest.mark.container


def health(rootless, name: str) -> dict:
    return json.loads(ok(rootless("inspect", "--format", "{{json .State.Health}}", name)))


def test_a_passing_check_makes_the_container_healthy(rootless, busybox):
    ok(rootless("run", "-d", "--name", "fine", "--health-cmd", "test -e /tmp/ready",
                "--health-interval", "200ms", "--health-retries", "2", busybox, "sh", "-c",
                "sleep 1; touch /tmp/ready; sleep 1000"))
    assert health(rootless, "fine")["Status"] == "starting"
    assert "(health: starting)" in ok(rootless("ps", "--format", "{{.Status}}"))
    wait_for(lambda: health(rootless, "fine")["Status"] == "healthy", timeout=30)
    state = health(rootless, "fine")
    assert state["FailingStreak"] == 0
    assert state["Log"][-1]["ExitCode"] == 0
    assert "(healthy)" in ok(rootless("ps", "--format", "{{.Status}}"))
    assert ok(rootless("ps", "-q", "-f", "health=healthy")).strip()
    assert ok(rootless("ps", "-q", "-f", "health=unhealthy")) == ""


def test_failing_checks_make_it_unhealthy_after_the_retries(rootless, busybox):
    ok(rootless("run", "-d", "--name", "sick", "--health-cmd", "echo checking; exit 1",
                "--health-interval", "100ms", "--health-retries", "3", busybox,
                "sleep", "1000"))
    wait_for(lambda: health(rootless, "sick")["Status"] == "unhealthy", timeout=30)
    state = health(rootless, "sick")
    assert state["FailingStreak"] >= 3
    assert state["Log"][-1]["ExitCode"] == 1
    assert state["Log"][-1]["Output"] == "checking\n"
    assert len(state["Log"]) <= 5
    assert "(unhealthy)" in ok(rootless("ps", "--format", "{{.Status}}"))


def test_a_check_that_outlives_its_timeout_fails(rootless, busybox):
    ok(rootless("run", "-d", "--name", "slow", "--health-cmd", "sleep 5",
                "--health-interval", "100ms", "--health-timeout", "200ms",
                "--health-retries", "1", busybox, "sleep", "1000"))
    wait_for(lambda: health(rootless, "slow")["Status"] == "unhealthy", timeout=30)
    entry = health(rootless, "slow")["Log"][-1]
    assert entry["ExitCode"] == -1
    assert "exceeded timeout" in entry["Output"]


def test_healthcheck_settings_show_in_inspect(rootless, busybox):
    ok(rootless("create", "--name", "cfg", "--health-cmd", "true", "--health-interval",
                "1m30s", "--health-retries", "4", busybox, "true"))
    check = json.loads(ok(rootless("inspect", "--format", "{{json .Config.Healthcheck}}",
                                   "cfg")))
    assert check == {"Test": ["CMD-SHELL", "true"], "Interval": 90_000_000_000,
                     "Timeout": 30_000_000_000, "StartPeriod": 0, "Retries": 4}


def test_no_healthcheck_and_bad_durations(rootless, busybox):
    ok(rootless("create", "--name", "none", "--no-healthcheck", busybox, "true"))
    assert ok(rootless("inspect", "--format", "{{.Config.Healthcheck}}", "none")).strip() \
        == "<no value>"
    assert_error(rootless("run", "--health-cmd", "true", "--health-interval", "10",
                          busybox, "true"), 125, "missing unit in duration")
    assert_error(rootless("run", "--health-cmd", "true", "--health-retries", "-1",
                          busybox, "true"), 125, "cannot be negative")
