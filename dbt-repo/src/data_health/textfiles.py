"""Prometheus text files dropped by the pipeline's CLIs, served as one exposition.

`extract-load --metrics-file` writes one file per run (the node_exporter
"textfile" convention). Several files carry the same metric families with
different labels, so they are merged family by family, not concatenated:
a family's HELP/TYPE may appear only once in an exposition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)


@dataclass(eq=False)
class TextfileCollector:
    directory: Path

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not read anything (it happens before the server starts)."""
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for path in sorted(self.directory.glob("*.prom")):
            try:
                parsed = list(text_string_to_metric_families(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as error:
                log.warning("skipping %s: %s", path, error)
                continue
            for family in parsed:
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type, family.unit)
                )
                seen = {(s.name, tuple(sorted(s.labels.items()))) for s in merged.samples}
                for sample in family.samples:
                    if (sample.name, tuple(sorted(sample.labels.items()))) not in seen:
                        merged.samples.append(sample)
        yield from families.values()
