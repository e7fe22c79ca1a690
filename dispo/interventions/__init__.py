"""Interventions on a loaded model shared by an arc and falsify (head tempering)."""
