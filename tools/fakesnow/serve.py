"""Snowflake for the tests: fakesnow's HTTP server, which the Snowflake connector reaches over `http`.

Run as its own process (`tools/fakesnow/.venv/bin/python tools/fakesnow/serve.py [DB_DIR]`):
it prints the port it listens on, then serves until its stdin closes. With
DB_DIR the databases are files there, so a restarted emulator keeps what was
committed and loses what was not: what Snowflake does to the open transaction
of a client that died.
"""

from __future__ import annotations

import importlib
import os
import sys

from fakesnow import server
from fakesnow.instance import FakeSnow


def main() -> None:
    if len(sys.argv) > 1:
        # The server module's shared instance, replaced before the first session (`fakesnow.server`,
        # the attribute, is the function that starts it; the module is imported by name).
        importlib.import_module("fakesnow.server").shared_fs = FakeSnow(db_path=sys.argv[1])
    with server() as connection:
        print(connection["port"], flush=True)
        os.dup2(2, 1)  # the server's logs (uvicorn's access log is stdout) go where stderr goes
        sys.stdin.read()


if __name__ == "__main__":
    main()
