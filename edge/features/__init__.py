"""Feature extraction shared by the device and training: audio, VAD, MFCC, faces, key faces, video."""
