"""Superset's configuration (SUPERSET_CONFIG_PATH points here): what every environment shares.

Secrets and the warehouse come from the environment (bi.settings). Anonymous
visitors get the `Public` role, which `bi-assets roles` limits to the
dashboard and the datasets it reads; nginx in front allows only reads for
them (nginx/templates).
"""

from __future__ import annotations

from bi.settings import settings

_settings = settings()

SECRET_KEY = _settings.secret_key
SQLALCHEMY_DATABASE_URI = _settings.metadata_url
# Anonymous requests are this role; its permissions are set by `bi-assets roles`, not copied from Gamma.
AUTH_ROLE_PUBLIC = _settings.public_role
PUBLIC_ROLE_LIKE = None
FEATURE_FLAGS = {
    "DASHBOARD_RBAC": True,  # a dashboard's own roles decide who sees it
    "ENABLE_TEMPLATE_PROCESSING": False,  # no Jinja in SQL: a chart's SQL is what git says
}
# Every write carries a CSRF token; the public role has no write anyway.
WTF_CSRF_ENABLED = True
# nginx sets the security headers (one policy for every entrance); Superset's own would conflict.
TALISMAN_ENABLED = False
# The warehouse is read, never written, from SQL Lab.
PREVENT_UNSAFE_DB_CONNECTIONS = True
ROW_LIMIT = 50000
