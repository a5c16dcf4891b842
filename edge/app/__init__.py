"""The device-side application: the emotion-edge command line, the daemon, its benchmark, soak and fleet tools."""
