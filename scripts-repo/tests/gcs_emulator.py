"""`gcp-storage-emulator`, with the generation preconditions the landing's commit point relies on.

The emulator (PyPI, the stand-in TOOLCHAIN.md names) accepts `ifGenerationMatch`
on uploads and deletes and ignores it, so a compare-and-swap through it always
"wins" and a test of two writers proves nothing. Production GCS refuses such a
request with 412 Precondition Failed when the object is not at that generation
("0": when it exists at all). This launcher adds exactly that check in front
of the emulator's own insert and delete handlers, then runs its usual command
line: `python gcs_emulator.py start --host ... --port ...`.
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server
from gcp_storage_emulator.__main__ import main
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def _precondition_failed(request: Any, response: Any, storage: Any, object_id: str | None) -> bool:
    wanted = request.query.get("ifGenerationMatch")
    if not wanted or object_id is None:
        return False
    try:
        current = str(storage.get_file_obj(request.params["bucket_name"], object_id)["generation"])
    except NotFound:
        current = "0"
    if current == wanted[0]:
        return False
    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json(
        {"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold."}}
    )
    return True


def _uploaded_name(request: Any) -> str | None:
    if "name" in request.query:
        return str(request.query["name"][0])
    data = request.data
    if isinstance(data, dict) and isinstance(data.get("meta"), dict):
        return data["meta"].get("name")
    return None


def _guard(handler: Any, object_id: Any) -> Any:
    def guarded(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        if _precondition_failed(request, response, storage, object_id(request)):
            return None
        return handler(request, response, storage, *args, **kwargs)

    return guarded


_replacements = {
    objects.insert: _guard(objects.insert, _uploaded_name),
    objects.delete: _guard(objects.delete, lambda request: request.params.get("object_id")),
}
# The routing table holds the handler functions themselves; one path reads the module attribute.
for _, handlers in server.HANDLERS:
    for method, handler in list(handlers.items()):
        if handler in _replacements:
            handlers[method] = _replacements[handler]
objects.insert = _replacements[objects.insert]

if __name__ == "__main__":
    main(sys.argv[1:])
