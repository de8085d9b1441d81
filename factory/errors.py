"""Errors the factory raises for bad input: one line naming the problem and the fix."""


class FactoryError(Exception):
    """Base class: its message is a single line meant for the user.

    `user_facing` tells command-line front ends (which may not import this module)
    to print the message alone and exit non-zero, without a traceback.
    """

    user_facing = True
    permanent = False  # True: no retry can fix it, so a worker fails the job at once


class DataError(FactoryError):
    """Raw input that cannot be turned into bars (missing column, no rows, ...)."""

    def __init__(self, source: str, problem: str, fix: str) -> None:
        self.source = source
        self.problem = problem
        self.fix = fix
        super().__init__(f"{source}: {problem}; fix: {fix}")


class ConfigError(FactoryError):
    """A configuration value or key that the factory does not accept."""

    permanent = True
