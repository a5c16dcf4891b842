"""Fusion maths: decision-level fusion onto the product taxonomy, the model-level fusion head, temporal smoothing."""
