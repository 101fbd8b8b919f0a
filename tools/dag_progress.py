"""Turn `airflow dags test` output into a few progress lines; keep the full log.

Reads the DAG run's output on stdin, appends every line to the log file given
as the first argument, and prints a line whenever a task (or a tenth of a
mapped task's instances) finishes, so a long run shows it is moving.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter

END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+)(?: map_index=(?P<index>-?\d+))?")
STATE = re.compile(r"new_state=(?P<state>\w+)")


def main() -> None:
    log_path = sys.argv[1]
    expected = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    done: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    last_state = ""
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as log:
        for line in sys.stdin:
            log.write(line)
            state = STATE.search(line)
            if state:
                last_state = state.group("state")
            match = END.search(line)
            if not match:
                continue
            task = match.group("task").split(".")[-1]
            done[task] += 1
            if last_state == "failed":
                failed[task] += 1
                print(f"      {task} FAILED (see {log_path})", flush=True)
            mapped = match.group("index") not in (None, "-1")
            step = max(1, expected // 10) if expected else 1
            if not mapped or done[task] % step == 0 or done[task] == expected:
                total = f"/{expected}" if mapped and expected else ""
                print(
                    f"      {time.monotonic() - started:5.0f}s  {task:<18} {done[task]}{total} done",
                    flush=True,
                )


if __name__ == "__main__":
    main()
