"""Data sets (RAVDESS, class-folder image sets such as FER2013) and the on-disk feature cache."""
