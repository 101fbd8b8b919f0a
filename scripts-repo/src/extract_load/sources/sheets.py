"""Google Sheets ranges and xlsx files in Google Drive, through Google's API client.

Both end up as staged rows and land exactly like a file drop, so the same
quarantine rules and reconciliation apply. Credentials are Application
Default Credentials (Workload Identity on GKE, or a user's gcloud login);
the API endpoint can be overridden, which is how the tests replay recorded
responses over real HTTP.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from extract_load import engine
from extract_load.contract import DEFAULT_POLICY, EVENTS, QuarantinePolicy
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.names import checked_drive_file_id
from extract_load.settings import settings
from extract_load.sources.file import FileExtract, land_staged, require_columns, stage_file

SCOPES = [
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
]


def google_service(api: str, version: str) -> Any:
    from googleapiclient.discovery import build

    config = settings()
    endpoint = config.google_api_endpoints.get(api)
    options = {"api_endpoint": endpoint} if endpoint else None
    if endpoint and config.google_api_anonymous:
        from google.auth.credentials import AnonymousCredentials

        credentials: Any = AnonymousCredentials()
    else:
        import google.auth

        credentials, _ = google.auth.default(scopes=SCOPES)
    # static_discovery: the API description ships with the client; nothing is fetched at runtime.
    return build(
        api,
        version,
        credentials=credentials,
        client_options=options,
        static_discovery=True,
        cache_discovery=False,
    )


def stage_values(
    con: duckdb.DuckDBPyConnection,
    values: list[list[Any]],
    origin: str,
    required: tuple[str, ...] = EVENTS.required_columns,
) -> None:
    """Stage a values grid (first row = header) as `rows_in(_line, record)`; _line is the sheet row."""
    if not values:
        raise ValueError(f"{origin}: the range is empty (no header row)")
    header = [str(h).strip() for h in values[0]]
    require_columns(header, origin, required)
    con.execute("create temp table rows_in (_line bigint, record json)")
    rows = []
    for number, row in enumerate(values[1:], start=2):
        if not any(cell not in (None, "") for cell in row):
            continue
        record = {
            (header[i] if i < len(header) and header[i] else f"column_{i + 1}"): (
                None if cell == "" else cell
            )
            for i, cell in enumerate(row)
        }
        rows.append((number, json.dumps(record, default=str)))
    if rows:
        con.executemany("insert into rows_in values (?, ?)", rows)


def extract_sheet(
    spreadsheet_id: str,
    cell_range: str,
    bucket: Bucket,
    interval: Interval | None,
    source: str,
    service: Any = None,
    policy: QuarantinePolicy = DEFAULT_POLICY,
) -> FileExtract:
    service = service or google_service("sheets", "v4")
    response = (
        service.spreadsheets()
        .values()
        .get(
            spreadsheetId=spreadsheet_id,
            range=cell_range,
            valueRenderOption="UNFORMATTED_VALUE",
            dateTimeRenderOption="FORMATTED_STRING",
            majorDimension="ROWS",
        )
        .execute(num_retries=5)
    )
    origin = f"sheets://{spreadsheet_id}/{response.get('range', cell_range)}"
    con = engine.connect()
    try:
        stage_values(con, response.get("values", []), origin, policy.contract.required_columns)
        return land_staged(con, bucket, interval, source, origin, policy=policy)
    finally:
        con.close()


def extract_drive_xlsx(
    file_id: str,
    bucket: Bucket,
    interval: Interval | None,
    source: str,
    service: Any = None,
    policy: QuarantinePolicy = DEFAULT_POLICY,
) -> FileExtract:
    from googleapiclient.http import MediaIoBaseDownload

    service = service or google_service("drive", "v3")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{checked_drive_file_id(file_id)}.xlsx"
        with io.FileIO(path, "wb") as handle:
            downloader = MediaIoBaseDownload(handle, service.files().get_media(fileId=file_id))
            done = False
            while not done:
                _, done = downloader.next_chunk(num_retries=5)
        origin = f"drive://{file_id}"
        con = engine.connect()
        try:
            stage_file(con, path, origin, Path(tmp), required=policy.contract.required_columns)
            return land_staged(con, bucket, interval, source, origin, policy=policy)
        finally:
            con.close()
