"""dispo: an experiment runner for disposition distillation research (arXiv 2604.11867).

Heavy dependencies (torch, transformers, sklearn) are imported lazily inside the functions
that need them, so `import dispo` and `dispo --help` stay instant.
"""

__version__ = "0.1.0"
