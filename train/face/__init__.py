"""Training, calibration and benchmarks of the face CNN (FER2013 / FER+, RAVDESS clips), and the peer model."""
