"""opcompat's library floor: samples, strategies, error budgets, the comparison engine, verdicts, tracing.

It imports torch and hypothesis only: the case registry (``cases/``) sits on it, and the command line
(``matrix/``) is a client of both (the layering contract in pyproject.toml, checked by import-linter).
"""
