"""pyplot for figure files: the non-interactive Agg backend is chosen here, once, so that no
command ever needs a display."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
