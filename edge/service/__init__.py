"""Running as a system service: systemd's readiness, status and watchdog notifications."""
