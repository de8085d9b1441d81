"""The code version jobs are stamped with and workers check (re-exported for worker/submitter)."""

from factory.version import PACKAGES, code_version, describe, is_code_version

__all__ = ["PACKAGES", "code_version", "describe", "is_code_version"]
