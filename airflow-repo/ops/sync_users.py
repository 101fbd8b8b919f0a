"""Create or update the FAB auth manager's users from a file mounted from a Secret.

`airflow users create` takes the password on its command line (visible in
`ps` and in the official chart's values), or prompts for it. This reads a JSON
file instead, so passwords live only in the Secret the file comes from, and
running it again converges: a changed password or role is applied, and a
user the file no longer lists is deactivated (never deleted: their audit
trail stays), unless named in the break-glass list (`--keep`, or
`SYNC_USERS_KEEP`, comma-separated), kept for a lockout. The Helm chart's
create-user job and `make up` both run it.

File format: {"admin": {"role": "Admin", "password": "...", "email": "..."}, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROLES = ("Admin", "Op", "User", "Viewer")


def read_users(path: Path) -> dict[str, dict[str, str]]:
    try:
        users: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"cannot read the users file {path}: {error}") from error
    if not isinstance(users, dict) or not users:
        raise SystemExit(f"{path}: expected an object of users, e.g. {{'admin': {{'role': 'Admin', ...}}}}")
    for name, spec in users.items():
        if not isinstance(spec, dict) or not spec.get("password"):
            raise SystemExit(f"{path}: user {name!r} needs a non-empty password")
        if spec.get("role") not in ROLES:
            raise SystemExit(
                f"{path}: user {name!r} has role {spec.get('role')!r}; one of {', '.join(ROLES)}"
            )
    return users


def sync(users: dict[str, dict[str, str]], keep: frozenset[str] = frozenset()) -> list[str]:
    """Apply the users; returns one line per user saying what changed (never a password)."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from werkzeug.security import check_password_hash

    report = []
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        for name, spec in sorted(users.items()):
            role = sm.find_role(spec["role"])
            email = spec.get("email") or f"{name}@localhost"
            user = sm.find_user(username=name)
            if user is None:
                if not sm.add_user(name, name, "user", email, role, spec["password"]):
                    raise SystemExit(f"could not create user {name!r}")
                report.append(f"{name}: created ({spec['role']})")
                continue
            changes = []
            if not user.active:
                user.active = True
                changes.append("reactivated")
            if [r.name for r in user.roles] != [role.name]:
                user.roles = [role]
                changes.append(f"role {role.name}")
            if user.email != email:
                user.email = email
                changes.append("email")
            if changes:
                sm.update_user(user)
            if not check_password_hash(user.password, spec["password"]):
                sm.reset_password(user.id, spec["password"])
                changes.append("password")
            report.append(f"{name}: {'updated ' + ', '.join(changes) if changes else 'unchanged'}")
        # Whoever the Secret no longer lists can no longer sign in, break-glass accounts aside.
        for user in sorted(sm.get_all_users(), key=lambda u: u.username):
            if user.username in users or user.username in keep:
                continue
            if user.active:
                user.active = False
                sm.update_user(user)
                report.append(f"{user.username}: deactivated (not in the users file)")
            else:
                report.append(f"{user.username}: unchanged (inactive)")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("users_file", type=Path, help="JSON file of users (mounted from a Secret)")
    parser.add_argument(
        "--keep",
        action="append",
        default=[name for name in os.environ.get("SYNC_USERS_KEEP", "").split(",") if name.strip()],
        help="break-glass user left as it is although the file does not list it (repeatable)",
    )
    args = parser.parse_args(argv)
    for line in sync(read_users(args.users_file), frozenset(name.strip() for name in args.keep)):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
