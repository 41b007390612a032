"""Settings read from the environment: production refuses to start without its secrets, and passes check --deploy.

Each case imports the settings in a fresh interpreter, under exactly the environment given.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys

import pytest

from tests.processes import ROOT
from tests.timing import scaled

# Print what the settings decided; a refusal shows as the ImproperlyConfigured message on stderr.
SHOW = """
import json, django
django.setup()
from django.conf import settings
from streams import crypto
print(json.dumps({"debug": settings.DEBUG, "secret_key": settings.SECRET_KEY,
                  "field_key": settings.FIELD_ENCRYPTION_KEY, "roundtrip": crypto.decrypt(crypto.encrypt("x"))}))
"""


def clean_env(**env: str) -> dict:
    """Return a bare environment (nothing of the test run's own) plus ENV."""
    return {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "dashboard_project.settings", **env}


def settings_under(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=scaled(60)
    )


def loaded(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_refuses_to_start_without_its_secrets():
    done = settings_under()
    assert done.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY and FIELD_ENCRYPTION_KEY must be set" in done.stderr


def test_production_refuses_to_start_without_the_encryption_key():
    done = settings_under(SECRET_KEY="k" * 60)
    assert done.returncode != 0
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEY must be set" in done.stderr


def test_production_runs_on_the_keys_it_is_given(tmp_path):
    key_file = tmp_path / "secret"
    key_file.write_text("from-a-file-" + "s" * 50 + "\n")
    seen = loaded(settings_under(SECRET_KEY_FILE=str(key_file), FIELD_ENCRYPTION_KEY="field-key"))
    assert (seen["secret_key"], seen["field_key"], seen["roundtrip"]) == ("from-a-file-" + "s" * 50, "field-key", "x")


@pytest.mark.parametrize("env", [{"DEBUG": "true"}, {"FLOORVIEW_REQUIRE_SECRETS": "false"}], ids=["debug", "opt-out"])
def test_development_runs_on_the_public_keys(env):
    seen = loaded(settings_under(**env))
    assert seen["secret_key"] == "floorview-insecure-development-key-change-me"
    # The same derivation as before, so secrets a laptop already stored stay readable.
    assert seen["field_key"] == "derived:" + seen["secret_key"]
    assert seen["roundtrip"] == "x"


def test_require_secrets_true_does_not_override_debug():
    assert loaded(settings_under(DEBUG="true", FLOORVIEW_REQUIRE_SECRETS="true"))["debug"] is True


def test_the_demo_starts_without_any_secret():
    done = subprocess.run(
        [sys.executable, "manage.py", "demo", "--help"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert done.returncode == 0, done.stderr
    assert "simulator" in done.stdout
    # Other commands are production unless told otherwise.
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean_env(), capture_output=True, text=True
    )
    assert done.returncode != 0 and "SECRET_KEY" in done.stderr


def readme_production_settings() -> dict[str, str]:
    """Return the variables of the README's production settings block, placeholders filled in."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- production-settings -->\s*```sh\n(.*?)```", readme, re.S)
    assert block, "README has no production settings block"
    env = {}
    for line in block.group(1).splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = secrets.token_urlsafe(50) if value.startswith("<") else value
    return env


def test_check_deploy_is_clean_with_the_readme_production_settings():
    env = readme_production_settings()
    assert {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"} <= env.keys()
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    # The settings did take effect (rather than the check being blind to them).
    show = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE)",
        ],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert show.stdout.split(" ", 1)[0] == "True", show.stderr
    assert "HTTP_X_FORWARDED_PROTO" in show.stdout


def test_a_default_coalescing_window_a_board_would_refuse_is_refused_at_start():
    done = settings_under(FLOORVIEW_REQUIRE_SECRETS="false", FLOORVIEW_COALESCE_WINDOW="20")
    assert done.returncode != 0
    assert "FLOORVIEW_COALESCE_WINDOW must be at most 10.0" in done.stderr
