"""`bi-assets deploy`, the post-deploy job: run again it changes nothing; a rotated Secret rotates logins."""

from __future__ import annotations

import secrets
import urllib.error

from conftest import REFRESHER, Superset


def login(superset: Superset, username: str, password: str) -> bool:
    body = {"username": username, "password": password, "provider": "db", "refresh": False}
    try:
        return bool(superset.call("/api/v1/security/login", body).get("access_token"))
    except urllib.error.HTTPError as error:
        if error.code == 401:
            return False
        raise


def test_a_second_deploy_changes_nothing_and_a_rotated_password_is_the_login(superset: Superset) -> None:
    old = superset.env["BI_CACHE_REFRESHER_PASSWORD"]
    assert login(superset, REFRESHER, old)
    rotated = secrets.token_urlsafe(12)
    try:
        again = superset.assets("deploy", BI_CACHE_REFRESHER_PASSWORD=rotated)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        lines = again.stdout.splitlines()
        # Nothing of git's or the admin's changed; only the refresher's password, to the Secret's.
        for unchanged in ("user admin: unchanged", "assets: unchanged (20 objects)", "roles: unchanged"):
            assert unchanged in lines, again.stdout
        assert f"user {REFRESHER}: password set from the environment" in lines, again.stdout
        assert login(superset, REFRESHER, rotated)
        assert not login(superset, REFRESHER, old)
    finally:
        restored = superset.assets("deploy")
        assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-2000:]
    assert login(superset, REFRESHER, old)


def test_deploy_refuses_to_run_without_the_admins_password(superset: Superset) -> None:
    refused = superset.assets("deploy", BI_ADMIN_PASSWORD="")
    assert refused.returncode != 0
    assert "BI_ADMIN_PASSWORD is not set" in refused.stderr


def test_the_clusters_warehouse_opens_with_a_dialect_the_image_installs() -> None:
    """In clusters the database asset points at BigQuery (`bigquery://<project>`, Workload Identity): its
    SQLAlchemy dialect must be installed, or the deploy job's import fails there and nowhere else."""
    import sqlalchemy

    from bi.settings import warehouse_uri

    uri = warehouse_uri({"DBT_TARGET": "bigquery", "DBT_BIGQUERY_PROJECT": "example-project"})
    assert uri == "bigquery://example-project"
    # The dialect Superset would create the engine with (creating one asks Google for credentials).
    assert sqlalchemy.engine.make_url(uri).get_dialect().name == "bigquery"
