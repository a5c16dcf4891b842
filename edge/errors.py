"""Exceptions raised for bad input, each with a message that says what is wrong and where."""


class InputError(ValueError):
    """Base class: input that the pipeline cannot use (a file, a frame, a parameter)."""


class MediaDecodeError(InputError):
    """A media file that cannot be opened or decoded (missing, corrupt, not a media file)."""


class NoAudioStreamError(MediaDecodeError):
    """A media file that decodes but has no audio stream."""


class NoVideoStreamError(MediaDecodeError):
    """A media file that decodes but has no video stream."""


class EmptyMediaError(MediaDecodeError):
    """A media file whose stream holds no samples or frames."""


class ModelFileError(InputError):
    """A model file (detector weights, ONNX, engine) that is missing or unreadable."""
