"""Offline tools on files: classify, the feature report, the posterior timeline and its PNG."""
