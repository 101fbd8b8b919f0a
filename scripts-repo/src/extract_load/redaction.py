"""Secrets never leave the process in text: logs, errors, tracebacks, result lines.

A source's credentials reach this process only through the environment
(`*_env` settings of the sources file, `KAFKA_SASL_*`), but they travel on:
an API key sent as a query parameter appeared in urllib3's retry warnings and
in error text, a signed URL in every manifest and traceback. Task logs are
public through the viewer. Every line this CLI writes goes through `redact`,
which replaces each secret value it knows with `[redacted]`:

- the values of environment variables whose names say they are secret
  (`*_TOKEN`, `*_PASSWORD`, `*_PASSPHRASE`, `*_PRIVATE_KEY`, `*_SECRET`, `*_API_KEY`, `*_CREDENTIALS_JSON`),
  and of those the sources file names as secrets;
- the query string values and the user info of every URL in the environment
  or on the command line (a signed URL's signature, the password of a URL's user info).

Values shorter than 6 characters are left alone: too short to be a secret,
too likely to match ordinary text.
"""

from __future__ import annotations

import functools
import io
import re
import sys
from typing import TextIO
from urllib.parse import parse_qsl, urlparse

MASK = "[redacted]"
SECRET_NAMES = re.compile(
    r"(TOKEN|PASSWORD|PASSWD|PASSPHRASE|PRIVATE_KEY|SECRET|API_KEY|APIKEY|CREDENTIALS_JSON)$", re.IGNORECASE
)
MIN_LENGTH = 6


def _url_secrets(value: str) -> set[str]:
    found: set[str] = set()
    for candidate in re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"']+", value, flags=re.IGNORECASE):
        url = urlparse(candidate)
        if url.password:
            found.add(url.password)
        if url.username and url.password:
            found.add(f"{url.username}:{url.password}")
        for _, item in parse_qsl(url.query, keep_blank_values=False):
            found.add(item)
        if url.query:
            found.add(url.query)
    return found


def secret_values(
    environ: dict[str, str] | None = None, named: frozenset[str] = frozenset()
) -> frozenset[str]:
    """Every secret value the environment holds (see the module), longest first when used."""
    if environ is None:
        from extract_load.settings import settings

        environ = dict(settings().environ)
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if name in named or SECRET_NAMES.search(name):
            found.add(value)
        found |= _url_secrets(value)
    return frozenset(v for v in found if len(v) >= MIN_LENGTH)


@functools.cache
def _known() -> tuple[str, ...]:
    named: frozenset[str] = frozenset()
    try:  # the sources file names which variables hold secrets
        from extract_load.sources.registry import load_sources

        named = frozenset(
            variable for source in load_sources().values() for setting, variable in source.env_names().items()
            if setting in ("auth", "dsn")
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - a broken sources file is reported by the command that reads it
        named = frozenset()
    # URLs given on the command line (`extract-file --path <signed URL>`) count as well.
    arguments = {f"_ARGV_{i}": arg for i, arg in enumerate(sys.argv)}
    found = secret_values(named=named) | secret_values(arguments)
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """`text` with every known secret value replaced by `[redacted]`."""
    for secret in _known() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def public_location(location: str) -> str:
    """Where a file came from, without what a URL may carry that is not for logs (user info, query)."""
    url = urlparse(location)
    if url.scheme not in ("http", "https"):
        return location
    host = url.hostname or ""
    netloc = f"{host}:{url.port}" if url.port else host
    return url._replace(netloc=netloc, query="", fragment="", params="").geturl()


class RedactingStream(io.TextIOBase):
    """A text stream that redacts what is written to it: stdout and stderr of the CLI."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._inner.errors


def install() -> None:
    """Redact everything this process writes to stdout and stderr, tracebacks included."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


def forget() -> None:
    """Read the environment again on the next `redact` (tests change it)."""
    _known.cache_clear()
