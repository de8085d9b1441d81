"""`factory models`: the registered models, and `--space MODEL` its search space.

The space is the one `submit --tune MODEL` searches (factory.models.spaces, read through
the model registry by jobs.catalog); no Redis is needed.
"""

from __future__ import annotations

import argparse
import json

from submitter.common import table

SPACE_COLUMNS = [("param", "name"), ("kind", "kind"), ("range", "range"), ("scale", "scale")]
MODEL_COLUMNS = [("model", "model"), ("profiles", "profiles"), ("searches", "search_space")]


class ModelsError(Exception):
    user_facing = True


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="the registered models; --space MODEL prints what `submit --tune` searches"
    )
    p.add_argument("--space", metavar="MODEL", help="print this model's search space")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace) -> int:
    from jobs.catalog import model_names, model_rows

    if args.space is None:
        rows = model_rows()
        print(json.dumps({"models": rows}) if args.json else table(rows, MODEL_COLUMNS))
        return 0
    if args.space not in model_names():
        raise ModelsError(
            f"unknown model {args.space!r}; fix: choose from {', '.join(model_names())}"
        )
    return _print_space(args.space, args.json)


def _print_space(model: str, as_json: bool) -> int:
    from jobs.catalog import describe_space

    rows, space = describe_space(model)
    if as_json:
        print(json.dumps({"model": model, "search_space": space or None}))
    elif not rows:
        print(f"{model} has no search space yet: `submit --tune {model}` is refused")
    else:
        print(f"{model}: what `submit --tune {model}` searches (a --param fixes a parameter;")
        print("the others keep the job's profile)")
        print(table(rows, SPACE_COLUMNS))
    return 0
