"""Shared test helpers (imported as tests.helpers.*; pytest puts the repo root on sys.path via pythonpath)."""
