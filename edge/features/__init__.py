"""Feature extraction shared by the device and training: audio, VAD, MFCC, video, alignment, key faces, frames."""
