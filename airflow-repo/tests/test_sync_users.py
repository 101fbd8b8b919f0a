"""`python -m ops.sync_users`: the FAB users from a file, converging, against a real metadata DB."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW_REPO = Path(__file__).resolve().parents[1]


def sync(env: dict[str, str], users: dict, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    path.write_text(json.dumps(users))
    return subprocess.run(
        [sys.executable, "-m", "ops.sync_users", str(path), *extra],
        cwd=AIRFLOW_REPO,
        env=env,
        capture_output=True,
        text=True,
    )


def report(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The command's own lines (Airflow's logging shares stdout)."""
    return [
        line
        for line in done.stdout.splitlines()
        if re.match(r"^[a-z_]+: (created|updated|unchanged|deactivated)", line)
    ]


def users_in_db(env: dict[str, str], passwords: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """Each user's roles and whether the given password logs in, through FAB itself."""
    script = """
import json, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
passwords = json.load(sys.stdin)
with get_application_builder() as ab:
    users = ab.sm.get_all_users()
    print(json.dumps({u.username: [",".join(r.name for r in u.roles),
                      ab.sm.check_password(u.username, passwords.get(u.username, "")), bool(u.active)]
                      for u in users}))
"""
    shown = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(passwords),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {name: tuple(value) for name, value in json.loads(shown.stdout.strip().splitlines()[-1]).items()}


def test_users_are_created_then_converge(airflow_env: dict[str, str], tmp_path: Path) -> None:
    first_passwords = {"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}
    users = {
        "admin": {"role": "Admin", "password": first_passwords["admin"]},
        "viewer": {"role": "Viewer", "password": first_passwords["viewer"]},
    }
    first = sync(airflow_env, users, tmp_path / "users.json")
    assert first.returncode == 0, first.stderr[-2000:]
    assert report(first) == ["admin: created (Admin)", "viewer: created (Viewer)"]
    assert users_in_db(airflow_env, first_passwords) == {
        "admin": ("Admin", True, True),
        "viewer": ("Viewer", True, True),
    }
    # Unchanged file: nothing changes. Then a new password and a new role are applied.
    again = sync(airflow_env, users, tmp_path / "users.json")
    assert report(again) == ["admin: unchanged", "viewer: unchanged"]
    new_password = secrets.token_urlsafe(12)
    users["viewer"] = {"role": "Op", "password": new_password}
    changed = sync(airflow_env, users, tmp_path / "users.json")
    assert report(changed) == ["admin: unchanged", "viewer: updated role Op, password"]
    assert users_in_db(airflow_env, first_passwords)["viewer"] == ("Op", False, True)
    assert users_in_db(airflow_env, {"admin": "", "viewer": new_password})["viewer"] == ("Op", True, True)
    output = changed.stdout + changed.stderr
    assert all(password not in output for password in (*first_passwords.values(), new_password))


def test_a_user_the_secret_no_longer_lists_is_deactivated_unless_kept(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    passwords = {name: secrets.token_urlsafe(12) for name in ("ops_lead", "leaver", "break_glass")}
    everyone = {name: {"role": "Admin", "password": password} for name, password in passwords.items()}
    assert sync(airflow_env, everyone, tmp_path / "users.json").returncode == 0
    remaining = {"ops_lead": everyone["ops_lead"]}
    removed = sync(airflow_env, remaining, tmp_path / "users.json", "--keep", "break_glass")
    assert removed.returncode == 0, removed.stderr[-2000:]
    lines = report(removed)
    assert "leaver: deactivated (not in the users file)" in lines and "ops_lead: unchanged" in lines
    assert not any(line.startswith("break_glass") for line in lines)
    state = users_in_db(airflow_env, passwords)
    assert state["leaver"][2] is False and state["break_glass"][2] is True and state["ops_lead"][2] is True
    # Listed again, the user is active again.
    back = sync(airflow_env, everyone, tmp_path / "users.json")
    assert "leaver: updated reactivated" in report(back)
    assert users_in_db(airflow_env, passwords)["leaver"][2] is True


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ({"admin": {"role": "Admin"}}, "needs a non-empty password"),
        ({"admin": {"role": "Superuser", "password": "x"}}, "has role 'Superuser'"),
        ([], "expected an object of users"),
    ],
)
def test_a_bad_users_file_is_refused_with_the_reason(
    airflow_env: dict[str, str], tmp_path: Path, users: object, message: str
) -> None:
    refused = sync(airflow_env, users, tmp_path / "users.json")  # type: ignore[arg-type]
    assert refused.returncode != 0 and message in refused.stderr
