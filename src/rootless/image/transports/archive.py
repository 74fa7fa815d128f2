"""Image archives (what `load` reads): docker-archive or OCI archive, told apart by
their contents; several images per archive."""

from __future__ import annotations

from pathlib import Path

from rootless.errors import ImageError
from rootless.image.transports.base import ImageSource
from rootless.image.transports.files import TarFiles


def archive_sources(path: Path, description: str,
                    platform: dict[str, str] | None = None) -> tuple[TarFiles, list[ImageSource]]:
    """Open an uncompressed image archive; returns its files (close them when done) and
    one source per image. manifest.json (docker save) wins over index.json (OCI): Docker
    >= 25 writes both, and only manifest.json has the RepoTags."""
    from rootless.image.transports.docker_archive import docker_sources
    from rootless.image.transports.oci import oci_sources

    files = TarFiles(path, description)
    try:
        if files.exists("manifest.json"):
            return files, list(docker_sources(files, description))
        if files.exists("index.json"):
            return files, list(oci_sources(files, description, platform))
        raise ImageError(f"{description} is neither a docker-archive (no manifest.json) nor "
                         "an OCI archive (no index.json)")
    except BaseException:
        files.close()
        raise
