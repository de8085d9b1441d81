"""The `submit` command. The runner (plans, enqueueing, workers) is issue #3 and not built yet."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print(
        "error: `submit` is not available yet: the runner (job plans and workers) is not built "
        "in this version; fix: build a dataset with `factory data` for now",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
