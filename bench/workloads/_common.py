"""What the workloads share: one JSON line per measurement, a process timed from
outside with its peak memory, generated events landed once, and the
platform's own path (the loader's CLI, then dbt) over a landed bucket.

Only the standard library at import time: workloads run in different
subprojects' environments (psutil and DuckDB are imported where used).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_BIN = ROOT / "scripts-repo" / ".venv" / "bin"
DBT_REPO = ROOT / "dbt-repo"
DBT = DBT_REPO / ".venv" / "bin" / "dbt"
START = dt.date(2025, 1, 6)
# A case whose first repetition takes longer than this many seconds runs once: `make bench` sets it
# so that the full scale fits its half hour (a 25M build or pandas at 10M would take 10 minutes
# over three repetitions). Run alone, a workload repeats every case.
REPEAT_UNDER = float(os.environ.get("BENCH_REPEAT_UNDER") or "inf")
# Set by `make bench` for one run: a size's platform builds are measured once and reported by every
# workload that needs them (P1's 1M and 10M are points of P3's curve).
RUN_ID = os.environ.get("BENCH_RUN_ID", "")


def repeats_again(seconds: float | None) -> bool:
    """Whether a case that took `seconds` (None: it failed) is worth another repetition."""
    return seconds is not None and seconds <= REPEAT_UNDER


def emit(bench: str, group: str, case: str, value: float | None, unit: str, **extra: object) -> None:
    """One measurement, as `bench/run.py` reads it from the workload's stdout."""
    record = {"bench": bench, "group": group, "case": case, "value": value, "unit": unit, **extra}
    print(json.dumps(record), flush=True)


def emit_rate(bench: str, group: str, case: str, events: int, seconds: float | None, **extra: object) -> None:
    """A throughput in events per second (higher is better)."""
    rate = events / seconds if seconds else None
    emit(bench, group, case, rate, "events/s", events=events, seconds=seconds, **extra)


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Run `command`; its wall seconds, peak RSS of its process tree (bytes) and exit code."""
    import psutil

    started = time.monotonic()
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        print(stderr.decode(errors="replace")[-3000:], file=sys.stderr)
    return seconds, peak, process.returncode


@dataclass(frozen=True)
class Landed:
    bucket: Path
    rows: int
    files: list[Path]
    days: list[str]

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def land(events: int, days: int, workdir: Path, start: dt.date = START, exact: bool = False) -> Landed:
    """Generate `events` over `days` and land them as `extract-load extract-file` does, once per folder.

    The generator's `--events` is approximate (its users' lifetimes depend on
    the period); `exact` asks for the user count that gives `events`, measured
    on a small sample of the same period and seed.
    """
    bucket = workdir / "bucket"
    # Workloads prepare their data side by side (`make bench`): one lands a folder, others wait for it.
    with (workdir / ".landing.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _land_once(events, days, workdir, bucket, start, exact)
    root = bucket / "raw" / "events"
    files = sorted(root.rglob("*.jsonl.gz"))
    rows = sum(int(json.loads(m.read_text())["row_count"]) for m in root.rglob("_manifest.json"))
    landed_days = sorted(p.name.removeprefix("dt=") for p in root.glob("dt=*"))
    return Landed(bucket, rows, files, landed_days)


SAMPLE_USERS = 5_000


def users_for(events: int, days: int, start: dt.date, workdir: Path) -> int:
    """Users that yield about `events` over `days`: events per user measured on a sample, same seed."""
    sample = workdir / "sample.parquet"
    out = subprocess.run(
        [str(SCRIPTS_BIN / "extract-load"), "generate", "--out", str(sample), "--users", str(SAMPLE_USERS),
         "--days", str(days), "--start", start.isoformat(), "--seed", "11"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    sample.unlink()
    per_user = json.loads(out.stdout.strip().splitlines()[-1])["events"] / SAMPLE_USERS
    return max(10, round(events / per_user))


def _land_once(events: int, days: int, workdir: Path, bucket: Path, start: dt.date, exact: bool) -> None:
    if not (workdir / "landed.ok").exists():
        shutil.rmtree(bucket, ignore_errors=True)
        source = workdir / "events.parquet"
        extract_load = str(SCRIPTS_BIN / "extract-load")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
        size = (
            ["--users", str(users_for(events, days, start, workdir))] if exact else ["--events", str(events)]
        )
        generate = [extract_load, "generate", "--out", str(source), *size,
                    "--days", str(days), "--start", start.isoformat(), "--seed", "11"]  # fmt: skip
        subprocess.run(generate, **quiet)
        landing = [extract_load, "--log-format", "json", "extract-file", "--path", str(source),
                   "--bucket", str(bucket)]  # fmt: skip
        subprocess.run(landing, **quiet)
        source.unlink()
        (workdir / "landed.ok").write_text("")


def landed_folder(base: Path, events: int, days: int) -> Path:
    """Where `events` generated over `days` are landed: one folder per size, shared by the workloads."""
    folder = base / f"n{events}-d{days}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


@dataclass(frozen=True)
class PlatformRun:
    """One full build through the platform's path: the loader's CLI, then `dbt build`."""

    load_seconds: float
    dbt_seconds: float
    dbt_work_seconds: float
    load_peak_rss: int
    dbt_peak_rss: int

    @property
    def peak_rss(self) -> int:
        return max(self.load_peak_rss, self.dbt_peak_rss)

    @property
    def seconds(self) -> float:
        return self.load_seconds + self.dbt_seconds


def run_platform(bucket: Path, warehouse: Path, first: str, end: str, workdir: Path) -> PlatformRun:
    """`extract-load load` of the days [first, end), then `dbt build` of every model and data test.

    dbt's own `elapsed_time` (its work, after start-up and parsing) is kept
    apart, so a reader can tell dbt's fixed cost from the data's.
    """
    load_s, load_peak, code = measured(
        [str(SCRIPTS_BIN / "extract-load"), "--log-format", "json", "load", "--start", first,
         "--end", end, "--bucket", str(bucket), "--warehouse", str(warehouse)]
    )  # fmt: skip
    if code != 0:
        raise SystemExit("extract-load load failed")
    # One target folder per warehouse path: the profile renders the path, and a changed profile would
    # make dbt parse the project again from scratch where a deployment (one path) parses partially.
    target = workdir / f"target-{warehouse.stem}"
    dbt_s, dbt_peak, code = measured(
        [str(DBT), "build", "--exclude-resource-type", "unit_test",
         "--project-dir", str(DBT_REPO), "--profiles-dir", str(DBT_REPO)],
        env={"DBT_DUCKDB_PATH": str(warehouse), "DBT_TARGET": "duckdb", "DBT_TARGET_PATH": str(target),
             "DBT_LOG_PATH": str(workdir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"},
    )  # fmt: skip
    if code != 0:
        raise SystemExit("dbt build failed")
    work = float(json.loads((target / "run_results.json").read_text())["elapsed_time"])
    return PlatformRun(load_s, dbt_s, work, load_peak, dbt_peak)


def platform_build(data: Landed, folder: Path, rep: int) -> PlatformRun:
    """Repetition `rep` of a full build of `data` from an empty warehouse, measured once per bench run.

    Within one `make bench` run, P1 and P3 build the same sizes the same way:
    the second reads the first's measurements instead of paying for them again.
    """
    record = folder / f"builds-{RUN_ID}.jsonl"
    if RUN_ID and record.exists():
        done = [PlatformRun(**json.loads(line)) for line in record.read_text().splitlines()]
        if rep < len(done):
            return done[rep]
    warehouse = fresh(folder / "build.duckdb")
    run = run_platform(data.bucket, warehouse, data.days[0], next_day(data.days[-1]), folder)
    if RUN_ID:
        with record.open("a") as out:
            out.write(json.dumps(run.__dict__) + "\n")
    return run


def fresh(warehouse: Path) -> Path:
    """`warehouse` with no file left from an earlier repetition."""
    for stale in warehouse.parent.glob(f"{warehouse.name}*"):
        stale.unlink()
    return warehouse
