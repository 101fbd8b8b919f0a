"""`bi-assets`: Superset's dashboards, charts, datasets and database as the text in git.

- `import` makes Superset hold what git holds, and changes nothing when it
  already does (it compares Superset's own export first): run it after every
  deploy and every `make up`. Then the roles in `roles/` (bi.roles): the
  public's is exactly what git declares.
- `check` fails, naming each object, when Superset and git differ (roles/ too).
- `export --out DIR` writes what Superset holds in git's form: build a chart in
  the UI, export, review the diff, commit.
- `deploy` is the post-deploy job (bi.deploy): the metadata DB's migrations,
  the users the environment names, then `import`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bi import assets, deploy, roles
from bi.settings import ASSETS, Settings, settings, use_superset_config


@contextlib.contextmanager
def superset(config: Settings, before: list[deploy.User] | None = None) -> Iterator[Any]:
    """Superset's application context, configured by bi.superset_config (`before`: users made first)."""
    use_superset_config()
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from flask import g
        from superset import security_manager

        for user in before or []:
            print(deploy.ensure_user(security_manager, user))
        # Imports and exports run as a user (owners, access filters).
        g.user = security_manager.find_user(username=config.assets_owner)
        if g.user is None:
            raise SystemExit(
                f"no Superset user {config.assets_owner!r}: create it first (superset fab create-admin)"
            )
        yield app


def exported() -> dict[assets.Key, dict[str, Any]]:
    """What Superset holds: every database, dataset, chart and dashboard, normalised (bi.assets)."""
    from superset.commands.export.assets import ExportAssetsCommand

    return assets.normalise((name, content()) for name, content in ExportAssetsCommand().run())


@dataclass(frozen=True)
class Imported:
    changed: list[str]  # what differed before the import (none: nothing was done)
    objects: int  # how many assets git holds
    roles: list[str]  # what changed in the roles git declares (none: they already agreed)


def import_assets(config: Settings) -> Imported:
    """Converge Superset on git, the assets then the roles that read them; reads git's assets once."""
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    wanted = assets.load(config.assets_dir)
    before = assets.differences(wanted, exported())
    if before:
        ImportAssetsCommand(assets.bundle(wanted, config.warehouse_uri)).run()
        after = assets.differences(wanted, exported())
        if after:
            raise SystemExit("Superset still differs from git after the import:\n  " + "\n  ".join(after))
    granted = [line for role in roles.load(config.roles_dir) for line in roles.sync(role, wanted)]
    return Imported(before, len(wanted), granted)


def generated(manifest: Path, warehouse: Path, out: Path) -> list[Path]:
    """The assets, rebuilt from the dbt project (datasets) and bi.charts (charts, the dashboard)."""
    from bi import charts, datasets

    documents = [datasets.database(), *datasets.generate(manifest, warehouse)]
    documents += [chart.asset() for chart in charts.CHARTS] + [charts.dashboard(charts.CHARTS)]
    kinds = {"database_name": "databases", "table_name": "datasets", "slice_name": "charts"}
    found: dict[assets.Key, dict[str, Any]] = {}
    for document in documents:
        kind = next((k for field, k in kinds.items() if field in document), "dashboards")
        found[(kind, document["uuid"])] = assets.canonical(document)
    for kind in assets.KINDS:
        for stale in (out / kind).glob("*.yaml"):
            stale.unlink()
    return assets.write(out, found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("import", help="make Superset hold what git holds (no change when it does)")
    sub.add_parser("check", help="fail when Superset and git differ")
    sub.add_parser("deploy", help="after a deploy: migrate, the users the environment names, import")
    export = sub.add_parser("export", help="write what Superset holds, in git's form")
    export.add_argument("--out", type=Path, required=True)
    generate = sub.add_parser("generate", help="write the assets from the dbt project and bi.charts")
    generate.add_argument("--manifest", type=Path, required=True, help="dbt's target/manifest.json")
    generate.add_argument("--warehouse", type=Path, required=True, help="a DuckDB file dbt built (the types)")
    generate.add_argument("--out", type=Path, default=ASSETS)
    args = parser.parse_args(argv)
    if args.command == "generate":
        for path in generated(args.manifest, args.warehouse, args.out):
            print(path)
        return
    config = settings()
    # The deploy job: migrations first; the admin before the import (it imports), the others after
    # it (their roles are git's). `deploy.users` refuses to run without the admin's password.
    named = deploy.users(config) if args.command == "deploy" else []
    admin, others = named[:1], named[1:]
    if named:
        deploy.migrate()
    with superset(config, before=admin):
        if args.command in ("import", "deploy"):
            result = import_assets(config)
            for line in result.changed:
                print(f"imported: {line}")
            print(f"assets: {'imported' if result.changed else 'unchanged'} ({result.objects} objects)")
            for line in result.roles:
                print(line)
            print(f"roles: {'changed' if result.roles else 'unchanged'}")
            if others:  # their roles exist once the import has made them
                from superset import security_manager

                for user in others:
                    print(deploy.ensure_user(security_manager, user))
        elif args.command == "check":
            wanted = assets.load(config.assets_dir)
            found = assets.differences(wanted, exported())
            if not found:  # roles name the datasets' ids: only comparable once the assets agree
                found = [
                    line
                    for role in roles.load(config.roles_dir)
                    for line in roles.sync(role, wanted, apply=False)
                ]
            for line in found:
                print(line, file=sys.stderr)
            if found:
                sys.exit(1)
            print("assets: Superset holds what git holds, roles included")
        else:
            for path in assets.write(args.out, exported()):
                print(path)


if __name__ == "__main__":
    main()
