"""What runs in a session: an RQ worker with leases, reaper, fencing and session budget."""
