"""Render nginx/templates/*.template the way the official nginx image does at start-up.

The image runs envsubst over /etc/nginx/templates with NGINX_ENVSUBST_FILTER=^NGINX_,
so only ${NGINX_*} placeholders are replaced and nginx's own $variables stay. This
does the same for `make up` and the tests, with one difference on purpose: a
placeholder without a value is an error here, where envsubst would write an empty
string and leave nginx to fail on a confusing line.

Standard library only: it runs with any Python 3.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z0-9_]+)\}")
BARE = re.compile(r"\$NGINX_[A-Z0-9_]+")


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    if bare := BARE.findall(template):
        raise ValueError(f"write placeholders as ${{NAME}}, not {', '.join(sorted(set(bare)))}")
    missing = sorted(name for name in placeholders(template) if not values.get(name))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def local_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """NGINX_LOCAL_RESOLVERS as the image's 15-local-resolvers.envsh computes it."""
    servers = []
    for line in resolv_conf.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(f"[{fields[1]}]" if ":" in fields[1] else fields[1])
    return " ".join(servers) or "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the .conf file to write")
    args = parser.parse_args(argv)
    values = dict(os.environ)
    values.setdefault("NGINX_LOCAL_RESOLVERS", local_resolvers())
    try:
        text = render(args.template.read_text(encoding="utf-8"), values)
    except ValueError as error:
        print(f"{args.template}: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
