"""A command's result, as every platform command gives it to the task that ran it.

One JSON object on stdout (the local and container runners read the last
line) and, in a Kubernetes pod, the same in RESULTS_FILE, where the pod
operator collects its XCom (the contract `extract-load` keeps too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def emit(result: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    print(json.dumps(result, default=str))
    if results_file := env.get("RESULTS_FILE"):
        path = Path(results_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.tmp")
        partial.write_text(json.dumps([result], default=str), encoding="utf-8")
        partial.replace(path)
