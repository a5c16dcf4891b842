"""Compact CNNs (fewer than 10 weight layers on the classification path) and their shared blocks.

Every model maps its input to logits with ``forward``, exposes the input of its last fc layer with
``embed`` (for model-level fusion) and records its constructor arguments in ``config()``.
"""
