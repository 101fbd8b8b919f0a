"""What the statsd exporter makes of StatsD lines, given helm_config/platform/files/statsd-mapping.yaml.

The exporter binary cannot be installed on these machines, so the tests apply
its documented mapping rules to the lines Airflow really sends:

- `match_type: glob` (the default): `*` matches one dot-free part of the name;
  `$1`, `$2`, ... in `name` and `labels` are the parts matched, in order;
- `match_type: regex`: a Python-compatible regular expression, groups as `$n`;
- the first mapping that matches wins (`action: drop` discards the line); an
  unmatched name has every character
  that is not `[a-zA-Z0-9_]` replaced by `_`;
- `ttl` (a mapping's, else `defaults.ttl`; `0s`: never) is how long a series
  lives after its last line;
- a timer (`|ms`, `|h`, `|d`) becomes a summary: `<name>_sum` and
  `<name>_count` (plus quantile series under `<name>`); counters (`|c`) and
  gauges (`|g`) keep the name. InfluxDB-style tags (`name,key=value:1|c`, what
  Airflow sends with `statsd_influxdb_enabled`) and DogStatsD tags
  (`|#key:value`, what the pipeline's CLIs send) become labels.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAPPING = Path(__file__).resolve().parents[1] / "helm_config" / "platform" / "files" / "statsd-mapping.yaml"


@dataclass(frozen=True)
class Mapped:
    name: str
    labels: tuple[tuple[str, str], ...]
    kind: str  # counter, gauge or summary
    ttl_seconds: float = 0.0  # 0: the series never expires

    @property
    def series_names(self) -> set[str]:
        return (
            {self.name, f"{self.name}_sum", f"{self.name}_count"} if self.kind == "summary" else {self.name}
        )


def _compile(mapping: dict[str, Any]) -> re.Pattern[str]:
    if mapping.get("match_type") == "regex":
        return re.compile(mapping["match"])
    parts = [r"([^.]+)" if part == "*" else re.escape(part) for part in mapping["match"].split(".")]
    return re.compile("^" + r"\.".join(parts) + "$")


def _seconds(duration: str) -> float:
    """A Go duration as the exporter reads `ttl` (`0s`, `90m`, `72h`)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration)):
        total += float(amount) * units[unit]
    return total


def _expand(template: str, groups: tuple[str, ...]) -> str:
    return re.sub(r"\$\{?(\d+)\}?", lambda m: groups[int(m[1]) - 1], str(template))


class StatsdMapper:
    def __init__(self, path: Path = MAPPING) -> None:
        config = yaml.safe_load(path.read_text())
        self.mappings = [(_compile(m), m) for m in config.get("mappings", [])]
        self.default_ttl = _seconds((config.get("defaults") or {}).get("ttl", "0s"))

    def map_line(self, line: str) -> Mapped | None:
        """One StatsD line, e.g. `airflow.ti.finish.d.t.success:1|c`, as the exporter stores it."""
        name, sep, rest = line.partition(":")
        if not sep or "|" not in rest:
            return None
        name, *influx = name.split(",")
        influx_tags = [tuple(tag.split("=", 1)) for tag in influx if "=" in tag]
        fields = rest.split("|")
        kind = {"c": "counter", "g": "gauge", "ms": "summary", "h": "summary", "d": "summary"}.get(fields[1])
        if kind is None:
            return None
        dog_tags = [
            tuple(tag.split(":", 1)) for f in fields[2:] if f.startswith("#") for tag in f[1:].split(",")
        ]
        tags = tuple(sorted({**dict(influx_tags), **dict(dog_tags)}.items()))
        for pattern, mapping in self.mappings:
            found = pattern.match(name)
            if found and mapping.get("action") == "drop":
                return None
            if found:
                labels = {
                    key: _expand(value, found.groups())
                    for key, value in (mapping.get("labels") or {}).items()
                }
                return Mapped(
                    _expand(mapping["name"], found.groups()),
                    tuple(sorted({**dict(tags), **labels}.items())),
                    kind,
                    _seconds(mapping["ttl"]) if "ttl" in mapping else self.default_ttl,
                )
        return Mapped(re.sub(r"[^a-zA-Z0-9_]", "_", name), tags, kind, self.default_ttl)

    def series_names(self, lines: list[str]) -> set[str]:
        return {series for line in lines if (mapped := self.map_line(line)) for series in mapped.series_names}


@contextmanager
def statsd_listener() -> Iterator[tuple[int, list[str]]]:
    """A UDP socket standing where the StatsD exporter listens; collects every line Airflow sends."""
    lines: list[str] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                lines.extend(line for line in sock.recv(65535).decode(errors="replace").splitlines() if line)
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], lines
    finally:
        time.sleep(0.5)
        stop.set()
        thread.join(timeout=2)
        sock.close()
