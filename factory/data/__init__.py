"""Data phases: ingest and validate raw bars, sessions, resample, labels, splits,
scaling, lookback windows, and the dataset builder that runs them in order."""
