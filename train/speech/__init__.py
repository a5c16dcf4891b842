"""Training, cross-validation and benchmarks of the speech CNN on RAVDESS."""
