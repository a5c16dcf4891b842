"""The fusion head: paired data, training, evaluation, the one-actor benchmark and the cross-validated protocol."""
