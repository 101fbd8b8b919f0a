"""`bi-assets deploy`: what runs after every deploy of Superset, and before `make up` serves it.

One command, the same in every environment: the official chart's post-deploy
job runs it in the bi image (helm_config/bi/values.yaml), tools/superset.sh
runs it on this machine. In order, and each step changes nothing when it is
already done:

1. `superset db upgrade` and `superset init` (the metadata DB's schema, the
   built-in roles);
2. the admin the assets are imported as, its password the environment's
   (`BI_ADMIN_PASSWORD`, from a Secret): a rotated Secret rotates the login;
3. the assets and roles of git (`bi-assets import`);
4. Airflow's cache refresher (`BI_CACHE_REFRESHER_PASSWORD`), with only the
   role `CacheRefresher`, which step 3 has just made exist.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bi.settings import Settings, use_superset_config

SUPERSET = Path(sys.executable).with_name("superset")


@dataclass(frozen=True)
class User:
    username: str
    role: str
    password: str
    first_name: str
    last_name: str


def users(config: Settings) -> list[User]:
    """The users the environment names, in the order they can be made (admin first: it imports)."""
    if not config.admin_password:
        raise SystemExit("BI_ADMIN_PASSWORD is not set: the admin's password comes from the environment only")
    wanted = [User(config.assets_owner, "Admin", config.admin_password, "Platform", "Admin")]
    if config.cache_refresher_password:
        refresher = config.cache_refresher
        password = config.cache_refresher_password
        wanted.append(User(refresher, "CacheRefresher", password, "Airflow", "cache refresher"))
    return wanted


def migrate() -> None:
    """The metadata DB's schema and Superset's own roles and permissions (idempotent, Superset's CLI)."""
    use_superset_config()
    for command in (["db", "upgrade"], ["init"]):
        print(f"==> superset {' '.join(command)}", flush=True)
        subprocess.run([str(SUPERSET), *command], check=True)


def ensure_user(security_manager: Any, user: User) -> str:
    """Create the user, or make its role and password what the environment says; what was done."""
    from werkzeug.security import check_password_hash

    role = security_manager.find_role(user.role)
    if role is None:
        raise SystemExit(f"no role {user.role!r} for user {user.username!r}: import the roles first")
    found = security_manager.find_user(username=user.username)
    if found is None:
        email = f"{user.username}@example.org"
        created = security_manager.add_user(
            user.username, user.first_name, user.last_name, email, role, user.password
        )
        if not created:
            raise SystemExit(f"could not create the user {user.username!r}")
        return f"user {user.username}: created ({user.role})"
    done = []
    if [r.name for r in found.roles] != [user.role]:
        found.roles = [role]
        security_manager.update_user(found)
        done.append(f"role set to {user.role}")
    if not check_password_hash(found.password, user.password):
        security_manager.reset_password(found.id, user.password)
        done.append("password set from the environment")
    if not found.active:
        found.active = True
        security_manager.update_user(found)
        done.append("activated")
    return f"user {user.username}: {', '.join(done) or 'unchanged'}"
