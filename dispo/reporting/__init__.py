"""report.md for one run; cross-run reports."""
