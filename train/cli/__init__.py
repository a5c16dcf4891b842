"""The command lines of the training side: emotion-train, emotion-bench, and the options they share."""
