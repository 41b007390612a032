"""Floorview's own system checks: settings that are each valid alone but wrong together."""

from __future__ import annotations

import subprocess
import sys

from django.core import checks
from django.test import override_settings

from dashboard.checks import W001
from tests.processes import ROOT
from tests.test_settings_env import clean_env, readme_production_settings
from tests.timing import scaled

BEHIND_A_PROXY = {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https")}


def warned() -> set[str]:
    return {message.id for message in checks.run_checks(tags=[checks.Tags.security])}


@override_settings(**BEHIND_A_PROXY, FLOORVIEW_CLIENT_IP_HEADER="", AXES_LOCKOUT_BY=["username", "ip_address"])
def test_a_proxy_without_the_client_address_header_is_warned_about():
    # Every sign-in would come from the proxy: five bad passwords would lock everyone out.
    assert W001 in warned()


@override_settings(**BEHIND_A_PROXY, FLOORVIEW_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR")
def test_a_proxy_with_the_client_address_header_is_fine():
    assert W001 not in warned()


@override_settings(SECURE_PROXY_SSL_HEADER=None, FLOORVIEW_CLIENT_IP_HEADER="")
def test_no_proxy_no_warning():
    assert W001 not in warned()


@override_settings(**BEHIND_A_PROXY, FLOORVIEW_CLIENT_IP_HEADER="", AXES_LOCKOUT_BY=["username"])
def test_no_warning_when_sign_ins_are_not_throttled_by_address():
    assert W001 not in warned()


def test_manage_py_check_warns_with_the_readme_production_settings_less_the_client_address_header():
    env = readme_production_settings()
    del env["FLOORVIEW_CLIENT_IP_HEADER"]
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert W001 in done.stdout + done.stderr
