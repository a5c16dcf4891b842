"""emotion-edge training side: data sets, the feature cache, models, training and evaluation.

``train`` imports ``edge.features`` so that training and the device share one feature
implementation; nothing in ``edge`` imports ``train``.
"""

import edge  # noqa: F401,E402  (edge.privacy: dependency telemetry off before onnxruntime is imported)
