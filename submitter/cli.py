"""The `factory` command: one dispatcher, each subcommand owned by the package that runs it.

The submitter's own subcommand modules are listed here. Those of the other packages
(`factory data/train/predict`, `factory worker`) register from their own side, as entry
points of the group COMMAND_GROUP in pyproject.toml, so the submitter imports neither
factory nor worker (DESIGN.md's import direction) and loads only argparse at start-up.
A module registers its parser with `register(subparsers)` and sets `handler`, which
returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

COMMAND_GROUP = "ml_factory.commands"  # entry points: name -> subcommand module
# `factory --help` lists the registered commands in this order (others after them)
COMMAND_ORDER = ("data", "train", "predict", "worker")
SUBCOMMAND_MODULES = (  # the submitter's own, listed after the registered ones
    "submitter.status",
    "submitter.results",
    "submitter.models",
    "submitter.demo",
    "submitter.redis_cmd",
    "submitter.dashboard",
)
EXIT_USAGE = 2


def registered_commands() -> list:
    """The entry points of COMMAND_GROUP, in COMMAND_ORDER; an install that lacks them
    (a checkout on PYTHONPATH only) is told how to fix it."""
    found = {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}
    missing = [command for command in COMMAND_ORDER if command not in found]
    if missing:
        raise SystemExit(
            f"error: the factory commands {', '.join(missing)} are not registered (ml-factory "
            "is not installed here); fix: pip install -e . (or the wheel) first"
        )
    rank = {command: i for i, command in enumerate(COMMAND_ORDER)}
    return sorted(found.values(), key=lambda ep: (rank.get(ep.name, len(rank)), ep.name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factory",
        description="ml-factory: train, cross-validate and ensemble models on 1-minute bars "
        "with many short-lived worker sessions.",
    )
    parser.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        help="print the code version (package version + source hash) and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in registered_commands():
        command.load().register(sub)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class _Version(argparse.Action):
    """`--version`, computed only when asked for (it hashes the source files)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from jobs.versioning import describe

        print(describe())
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    return run_handler(args)


def run_handler(args: argparse.Namespace) -> int:
    """Run a subcommand; the project's own errors become one line and exit code 2."""
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if getattr(exc, "user_facing", False):
            from submitter.common import error_line

            as_json = bool(getattr(args, "json", False))  # one JSON object on stdout
            print(error_line(exc, as_json), file=sys.stdout if as_json else sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
