"""What runs in a session: an RQ worker with leases, reaper, fencing and session budget.

In a notebook cell:  `from worker import run_worker; run_worker(redis_url=..., home=...)`.
"""


def run_worker(*args, **kwargs):
    """See worker.run.run_worker (imported on call, so `import worker` stays light)."""
    from worker.run import run_worker as _run

    return _run(*args, **kwargs)
