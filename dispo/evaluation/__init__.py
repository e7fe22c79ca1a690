"""Runners that generate and score: eval, rescore, import."""
