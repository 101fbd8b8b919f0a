"""A local stand-in for the Google Sheets API: a CSV file served as a sheet's `values.get`.

The platform reads sheets through Google's own API client; only the endpoint
changes (`GOOGLE_SHEETS_API_ENDPOINT`, anonymously with `GOOGLE_API_ANONYMOUS`).
This server answers that client's requests from a CSV file, read again on
every request, so a tutorial or a demo can edit "the sheet" between runs
without a Google account. Cells are strings, as the API returns formatted
values by default.
"""

from __future__ import annotations

import csv
import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)


def make_handler(sheet: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sheets-standin"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s " + format, self.address_string(), *args)

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            # /v4/spreadsheets/<id>/values/<range>, as the client builds it.
            parts = path.strip("/").split("/")
            if len(parts) != 5 or parts[:2] != ["v4", "spreadsheets"] or parts[3] != "values":
                self._send(HTTPStatus.NOT_FOUND, {"error": {"code": 404, "message": "not found"}})
                return
            with sheet.open(newline="", encoding="utf-8") as handle:
                values = [row for row in csv.reader(handle)]
            self._send(
                HTTPStatus.OK, {"range": unquote(parts[4]), "majorDimension": "ROWS", "values": values}
            )

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def serve(sheet: Path, host: str, port: int) -> ThreadingHTTPServer:
    """Bind the stand-in (port 0 picks a free one); the caller runs serve_forever()."""
    if not sheet.is_file():
        raise ValueError(f"{sheet}: no such CSV file")
    server = ThreadingHTTPServer((host, port), make_handler(sheet))
    server.daemon_threads = True
    return server
