"""rootless: Docker-compatible containers for users who cannot be root."""

__version__ = "0.1.0"
