"""The `factory` command: one dispatcher, each subcommand owned by the package that runs it.

Subcommand modules are named here and imported by name, so this dispatcher loads
only argparse at start-up and the import direction of DESIGN.md holds: every
subcommand module keeps to its own package's imports. A module registers its
parser with `register(subparsers)` and sets `handler`, which returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules, in the order `factory --help` lists them
SUBCOMMAND_MODULES = (
    "factory.cli.data",
    "factory.cli.train",
    "factory.cli.predict",
    "worker.cli",
    "submitter.status",
    "submitter.results",
    "submitter.demo",
    "submitter.redis_cmd",
    "submitter.dashboard",
)
EXIT_USAGE = 2


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
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
