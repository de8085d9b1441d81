"""Errors of the runner meant for the user: one line, naming the problem and the fix."""


class RunnerError(Exception):
    user_facing = True
