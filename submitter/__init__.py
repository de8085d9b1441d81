"""The CLI: build a plan, enqueue it idempotently, status, cancel, retry, results, recover.

Never imports torch or the training code: the CLI must start fast.
"""
