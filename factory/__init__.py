"""Pure ML: data phases, features, labels, splits, models, training loops.

Never imports redis/rq or the other three packages (see DESIGN.md).
"""

__version__ = "0.1.0"
