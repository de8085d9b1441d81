"""The contract between submitter and worker: job specs, plans, kinds, leases, Redis keys."""
