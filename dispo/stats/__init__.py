"""Metrics, per-arm summaries and claims."""
