"""Face detectors: one interface (``FaceDetector``: frame in, ``Face`` boxes, scores and 5 landmarks out).

``face.py`` holds the interface and the ``Face`` record, ``yunet_opencv.py`` YuNet through OpenCV's
``cv2.FaceDetectorYN``, ``yunet.py`` the same YuNet graph on an inference backend of
``edge.runtime`` (ONNX Runtime, TensorRT) with its pre- and post-processing in numpy.
``edge.models.loading.create_detector`` builds the one that ``[detector]`` in the configuration names.
"""
