"""How the factory's commands answer an error: `error: <problem>; fix: <fix>` on stderr
(the dispatcher's job), or, with --json, one JSON object `{"error": ..., "fix": ...}` on
stdout, so that a script reading stdout always gets JSON. Exit code 2 either way."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

EXIT_ERROR = 2
FIX_MARK = "; fix: "


def error_fields(exc: BaseException) -> dict[str, str]:
    """{"error", "fix"} of a one-line error (a DataError's own fields when it has them)."""
    fix = getattr(exc, "fix", None)
    if isinstance(fix, str) and hasattr(exc, "source") and hasattr(exc, "problem"):
        return {"error": f"{exc.source}: {exc.problem}", "fix": fix}
    problem, mark, fix = str(exc).partition(FIX_MARK)
    return {"error": problem, "fix": fix if mark else ""}


def json_errors(handler: Callable) -> Callable:
    """`handler` that, when run with --json, prints its one-line errors as a JSON object."""

    @functools.wraps(handler)
    def run(args) -> int:
        if not getattr(args, "json", False):
            return handler(args)
        try:
            return handler(args)
        except Exception as exc:
            if not getattr(exc, "user_facing", False):
                raise
            print(json.dumps(error_fields(exc)), flush=True)
            return EXIT_ERROR

    return run
