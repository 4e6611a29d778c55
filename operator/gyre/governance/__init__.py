"""Governance: what a model answers for. Its model card (gyre.governance.card) and the evaluation behind it."""
