"""The warnings of a dataset build: every doubt about the input, one line each.

Ingest (timezone), validation (drops, duplicates, gaps, volume, swapped columns) and
the config (costs) each leave lines; `dataset_warnings` gathers them in that order for
the manifest's `ingest.warnings`, which `factory data` prints and `--json` lists.
"""

from __future__ import annotations

from factory.data.config import DatasetConfig
from factory.data.symbols import cost_warning


def dataset_warnings(ingest_info: dict, report: dict, config: DatasetConfig) -> list[str]:
    """Every warning of a build, without repeats, in the order the phases found them."""
    lines = [*ingest_info.get("warnings", []), *report.get("warnings", [])]
    cost = cost_warning(config.symbol, config.tick_value_usd)
    if cost:
        lines.append(cost)
    return list(dict.fromkeys(lines))
