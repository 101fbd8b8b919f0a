"""Add up the JUnit reports of every pytest run into one closing line."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main() -> int:
    passed = failed = skipped = 0
    for report in sorted(Path(sys.argv[1]).glob("*.xml")):
        # Reports written by our own pytest runs a moment ago, not untrusted input.
        for suite in ET.parse(report).getroot().iter("testsuite"):  # noqa: S314
            total = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += total - bad - skip
            failed += bad
            skipped += skip
            print(f"  {report.stem:<10} {total - bad - skip:>4} passed {bad:>3} failed {skip:>3} skipped")
            # Measurements a suite reports (e.g. DAG parse times), shown rather than asserted.
            for prop in suite.iter("property"):
                print(f"      {prop.get('name')}: {prop.get('value')}")
    print(f"all: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
