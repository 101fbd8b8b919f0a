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
# The Content-Security-Policy is Superset's: its pages carry inline script with a nonce drawn per
# response, which nginx cannot know. Nothing from another origin: no map tiles, no telemetry pixel.
# nginx (nginx/templates/superset.conf.template) sets the other security headers and TLS.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "default-src": ["'self'"],
        "base-uri": ["'self'"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,  # TLS ends at nginx
    "frame_options": "DENY",
}
SCARF_ANALYTICS = False
# Behind nginx: scheme, host and client address from its X-Forwarded-* headers.
ENABLE_PROXY_FIX = True
# The warehouse is read, never written, from SQL Lab.
PREVENT_UNSAFE_DB_CONNECTIONS = True
ROW_LIMIT = 50000
# No cross-origin reads: Superset's default lets two map-tile hosts read its responses.
ENABLE_CORS = False

if _settings.cache_redis_url:
    # Chart results cached for a day, and dropped whenever dbt_transform publishes new tables: its
    # refresh_bi_cache task calls the cache-key API, which finds the keys of a dataset in the
    # metadata DB. That API deletes through CACHE_CONFIG's cache, so the data cache must be the
    # same Redis under the same prefix, or the invalidation would delete nothing.
    CACHE_CONFIG = DATA_CACHE_CONFIG = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": _settings.cache_redis_url,
        "CACHE_KEY_PREFIX": _settings.cache_key_prefix,
        "CACHE_DEFAULT_TIMEOUT": 24 * 3600,
    }
    STORE_CACHE_KEYS_IN_METADATA_DB = True
    # The refresher logs in for a token and posts with it: no browser session, nothing to forge.
    # nginx refuses this route on the public site.
    WTF_CSRF_EXEMPT_LIST = [
        "superset.charts.data.api.data",
        "superset.dashboards.api.cache_dashboard_screenshot",
        "superset.views.core.explore_json",
        "superset.views.core.log",
        "superset.views.datasource.views.samples",
        "superset.cachekeys.api.invalidate",
    ]
