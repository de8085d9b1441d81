"""Evaluation: probability scores, metrics, the backtest and the report."""
