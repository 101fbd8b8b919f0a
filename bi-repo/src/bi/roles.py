"""Superset's roles as code: what the public may do is reviewed in git, not clicked together.

`roles/<Role>.yaml` names the role, the dashboards it may view and the
permissions it has. The dashboards' datasets are derived from the assets (each
chart on a listed dashboard reads one), so adding a chart on a new table to the
public dashboard grants its data with it, and nothing else is granted.

`sync` makes the role hold exactly that: what is missing is added and what
someone added by hand is taken away. Superset's own `superset init` leaves
roles it does not manage (Public is one when PUBLIC_ROLE_LIKE is None) alone,
so a later `init` does not undo this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bi import assets

Permission = tuple[str, str]  # (permission, view menu)


@dataclass(frozen=True)
class Role:
    name: str
    dashboards: tuple[str, ...]
    permissions: frozenset[Permission]

    def datasets(self, found: Mapping[assets.Key, dict[str, Any]]) -> set[str]:
        """The UUIDs of the datasets the role's dashboards' charts read."""
        dashboards = {d["dashboard_title"]: d for (kind, _), d in found.items() if kind == "dashboards"}
        missing = sorted(set(self.dashboards) - set(dashboards))
        if missing:
            raise SystemExit(f"role {self.name}: no dashboard {', '.join(map(repr, missing))} in the assets")
        charts = {
            node["meta"]["uuid"]
            for title in self.dashboards
            for node in (dashboards[title].get("position") or {}).values()
            if isinstance(node, dict) and node.get("type") == "CHART"
        }
        # A native filter over a column reads its values from the dataset it targets.
        filtered = {
            str(target["datasetUuid"])
            for title in self.dashboards
            for native in (dashboards[title].get("metadata") or {}).get("native_filter_configuration") or []
            for target in native.get("targets") or []
            if target.get("datasetUuid")
        }
        return filtered | {
            str(document["dataset_uuid"])
            for (kind, uuid), document in found.items()
            if kind == "charts" and uuid in charts
        }


def load(folder: Path) -> list[Role]:
    if not folder.is_dir():
        # Syncing no roles would leave the public role as Superset made it: refuse instead.
        raise SystemExit(f"{folder}: no roles folder (BI_ROLES_DIR names it)")
    roles = []
    for path in sorted(folder.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        pairs = [tuple(pair) for pair in document.get("permissions") or []]
        if any(len(pair) != 2 for pair in pairs):
            raise SystemExit(f"{path}: each permission is [permission, view menu]")
        if any(name.startswith("can_write") or name == "all_datasource_access" for name, _ in pairs):
            raise SystemExit(f"{path}: a role declared here never writes nor reads every dataset")
        roles.append(Role(document["role"], tuple(document.get("dashboards") or ()), frozenset(pairs)))
    return roles


def sync(role: Role, found: Mapping[assets.Key, dict[str, Any]], apply: bool = True) -> list[str]:
    """Make Superset's role hold exactly what git declares; the lines say what differed (none: nothing).
    With `apply=False` nothing is changed: the lines are what `sync` would do (`bi-assets check`)."""
    from superset import db, security_manager
    from superset.connectors.sqla.models import SqlaTable

    wanted: set[Permission] = set(role.permissions)
    for uuid in sorted(role.datasets(found)):
        table = db.session.query(SqlaTable).filter_by(uuid=uuid).one_or_none()
        if table is None:
            raise SystemExit(f"role {role.name}: dataset {uuid} is not in Superset: import the assets first")
        wanted.add(("datasource_access", table.perm))
    found_role = security_manager.find_role(role.name)
    if found_role is None:
        if not apply:
            return [f"role {role.name}: missing"]
        found_role = security_manager.add_role(role.name)
    held = {(pvm.permission.name, pvm.view_menu.name): pvm for pvm in found_role.permissions}
    verb = ("granted", "revoked") if apply else ("lacks", "also holds")
    changes = []
    for name, view in sorted(wanted - set(held)):
        pvm = security_manager.find_permission_view_menu(name, view)
        if pvm is None:
            raise SystemExit(f"role {role.name}: Superset has no permission {name} on {view}")
        if apply:
            security_manager.add_permission_role(found_role, pvm)
        changes.append(f"role {role.name}: {verb[0]} {name} on {view}")
    for name, view in sorted(set(held) - wanted):
        if apply:
            security_manager.del_permission_role(found_role, held[(name, view)])
        changes.append(f"role {role.name}: {verb[1]} {name} on {view}")
    if apply:
        db.session.commit()
    return changes
