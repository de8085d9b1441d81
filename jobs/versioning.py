"""The code version jobs are stamped with and workers check (re-exported for worker/submitter)."""

from factory.version import code_version

__all__ = ["code_version"]
