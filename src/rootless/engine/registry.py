"""pull, push, login, logout and search: the registry commands over image/registry.

Pull = the copy routine from a RegistrySource into the store, after the blobs the store
lacks have been fetched concurrently (trio worker threads around the blocking HTTP
client, a few at a time), each one streamed through sha256 to tmp/ and renamed into the
CAS only when complete and verified, and each layer unpacked as soon as its blob is in
(engine/layer_unpack.py). The image becomes visible only when the store destination
commits, so an interrupted pull leaves verified blobs and layers and nothing else; the
next pull skips them. Push uploads several blobs at once, then the manifest.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from rootless.errors import ImageError, UsageError
from rootless.image.compression import Counting
from rootless.image.manifest import CONFIG_TYPES

PARALLEL_BLOBS = 4
# (event, short blob id or text, bytes done, bytes in all: for "downloading" only)
Progress = Callable[[str, str, int, int], None]


class PullResult(NamedTuple):
    reference: str  # as docker prints it: busybox:latest
    full: str  # docker.io/library/busybox:latest
    image_id: str
    digest: str
    fetched: int  # blobs downloaded (0: all were in the store)


def _registry(host: str, tls_verify: bool | None, credentials=None):
    from rootless.image.credentials import credentials_get
    from rootless.image.registry.client import Registry

    if credentials is None:
        credentials = credentials_get(host)
    return Registry(host, credentials, tls_verify)


def parse_platform(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {text!r} (want OS/ARCH[/VARIANT], e.g. "
                         "linux/amd64)")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


# ---- pull ----

def image_pull(store, name: str, all_tags: bool = False, platform: str | None = None,
               tls_verify: bool | None = None,
               progress: Progress | None = None) -> list[PullResult]:
    from rootless.image.reference import parse_reference
    from rootless.store.space import layer_limit

    layer_limit()  # a bad ROOTLESS_LAYER_LIMIT is refused before anything is fetched
    want = parse_platform(platform)
    ref = parse_reference(name, default_tag=not all_tags)
    if all_tags and (ref.tag or ref.digest):
        raise UsageError(f"tag can't be used with --all-tags/-a: {name}")
    registry = _registry(ref.domain, tls_verify)
    try:
        refs = [ref.with_tag(t) for t in sorted(registry.tags_list(ref.path))] \
            if all_tags else [ref]
        if not refs:
            raise ImageError(f"repository {ref.name} has no tags")
        return [_pull_one(store, registry, r, want, progress) for r in refs]
    finally:
        registry.close()


def _pull_one(store, registry, ref, want, progress) -> PullResult:
    from rootless.engine.layer_unpack import unpack_parallel
    from rootless.engine.trio_run import run_unwrapped
    from rootless.image.manifest import parse_config, parse_manifest
    from rootless.image.registry.transport import RegistrySource
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreDestination, layer_jobs
    from rootless.store.blobs import blob_read

    store.clean_temp()
    source = RegistrySource(registry, ref, want)
    dest = StoreDestination(store, unpack_parallel)
    raw, media_type = source.manifest()
    manifest = parse_manifest(raw, media_type, f"manifest of {ref}")
    _tell(progress, "start", f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    missing = {d.digest for d in [manifest.config, *manifest.layers] if not dest.has_blob(d)}
    for desc in manifest.layers:
        _tell(progress, "pulling" if desc.digest in missing else "exists", desc.digest[7:19])
    if manifest.config.digest in missing:
        _fetch(source, dest, manifest.config, None)
    config = parse_config(blob_read(store, manifest.config.digest))
    jobs = layer_jobs(manifest, config["rootfs"]["diff_ids"])
    try:
        run_unwrapped(_fetch_and_unpack, store, source, dest, jobs, missing, progress)
    except BaseException:
        store.clean_temp(own=True)  # what abandoned fetches were writing
        raise
    names = [str(ref)] if ref.digest else [str(ref), f"{ref.name}@{source.digest}"]
    image_id = copy_image(source, dest, names)  # every blob and layer is there: it records
    _tell(progress, "digest", source.digest)
    return PullResult(ref.familiar(), str(ref), image_id, source.digest, len(missing))


async def _fetch_and_unpack(store, source, dest, jobs, missing: set[str], progress) -> None:
    """Each layer: fetch its blob if the store lacks it (PARALLEL_BLOBS at a time, each
    blob once), then unpack it at once, while other layers still download. The first
    failure, or Ctrl-C, cancels the rest at once: a fetch blocked in a read is abandoned
    (its thread can only finish a verified blob or a file in tmp/), unpacking processes
    are killed. What is in tmp/ goes at the next command's clean_temp."""
    import trio

    from rootless.engine.layer_unpack import unpack_limiter, unpack_one
    from rootless.image.transports.storage import layer_size

    fetch_limiter, unpack_slots = trio.CapacityLimiter(PARALLEL_BLOBS), unpack_limiter()
    fetched: dict[str, trio.Event] = {}
    to_unpack = sum(1 for job in jobs if layer_size(store, job.chain_id) is None)

    async def layer(job) -> None:
        digest, short = job.desc.digest, job.desc.digest[7:19]
        if digest in fetched:
            await fetched[digest].wait()
        elif digest in missing:
            fetched[digest] = trio.Event()
            await trio.to_thread.run_sync(_fetch, source, dest, job.desc, progress,
                                          limiter=fetch_limiter, abandon_on_cancel=True)
            fetched[digest].set()
        if layer_size(store, job.chain_id) is None:
            await unpack_one(store, job, unpack_slots, in_process=to_unpack == 1,
                             progress=progress and (lambda n: progress(
                                 "extracting", short, n, job.desc.size)))
            _tell(progress, "complete", short)
        elif digest in missing:
            _tell(progress, "complete", short)

    async with trio.open_nursery() as nursery:
        for job in sorted(jobs, key=lambda job: job.desc.size, reverse=True):
            nursery.start_soon(layer, job)


def _fetch(source, dest, desc, progress) -> None:
    short = desc.digest[7:19]
    with source.open_blob(desc) as stream:
        if progress and desc.media_type not in CONFIG_TYPES:
            stream = Counting(stream, lambda n: progress("downloading", short, n, desc.size))
        dest.put_blob(stream, desc)
    if desc.media_type not in CONFIG_TYPES:
        _tell(progress, "done", short)


class _CountingSource:
    """An image source whose layer streams report the bytes read ("uploading")."""

    def __init__(self, source, progress: Progress | None) -> None:
        self.source, self.progress = source, progress

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def open_blob(self, desc):
        stream = self.source.open_blob(desc)
        if not self.progress or desc.media_type in CONFIG_TYPES:
            return stream
        short, progress = desc.digest[7:19], self.progress
        return Counting(stream, lambda n: progress("uploading", short, n, desc.size))


def _tell(progress: Progress | None, event: str, text: str) -> None:
    if progress:
        progress(event, text, 0, 0)


# ---- push ----

class PushResult(NamedTuple):
    reference: str
    digest: str
    size: int


def image_push(store, name: str, destination: str | None = None,
               tls_verify: bool | None = None, progress: Progress | None = None) -> PushResult:
    from rootless.engine.images import image_lookup
    from rootless.image.manifest import parse_manifest
    from rootless.image.reference import parse_reference
    from rootless.image.registry.transport import RegistryDestination
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreSource
    from rootless.store import metadata as md

    image_id = image_lookup(store, name)
    if destination is None and (name.startswith("sha256:") or
                                md.image_get(store, "sha256:" + name) is not None):
        raise UsageError(f"push {name}: an image id needs a destination: "
                         "rootless push ID REGISTRY/REPOSITORY[:TAG]")
    ref = parse_reference(destination or name)
    same_registry = [parse_reference(n) for n in md.tags_of(store, image_id)]
    mount_from = [r.path for r in same_registry if r.domain == ref.domain]
    registry = _registry(ref.domain, tls_verify)
    try:
        source = StoreSource(store, image_id, [str(ref)])
        dest = RegistryDestination(registry, ref, mount_from)

        def tell(event: str, desc) -> None:
            if desc.media_type in CONFIG_TYPES:
                return  # docker reports layers only
            words = {"skip": "Layer already exists", "copy": "Pushing", "done": "Pushed"}
            word = words[event]
            if event == "done" and desc.digest in dest.mounted:
                word = f"Mounted from {dest.mounted[desc.digest]}"
            _tell(progress, word, desc.digest[7:19])

        copy_image(_CountingSource(source, progress), dest, [str(ref)], tell,
                   copy_blobs_concurrently)
        raw, media_type = source.manifest()
        parse_manifest(raw, media_type)
        return PushResult(ref.familiar(), dest.digest, len(raw))
    finally:
        registry.close()


def copy_blobs_concurrently(source, dest, descs, progress) -> None:
    """copy_image's blob step, PARALLEL_BLOBS at a time (trio worker threads around the
    blocking HTTP client); the largest first, since the push ends with the slowest."""
    from rootless.engine.trio_run import run_unwrapped
    from rootless.image.transports.copy import copy_blob, copy_blobs_in_turn

    if len(descs) <= 1:
        copy_blobs_in_turn(source, dest, descs, progress)
        return
    import trio

    async def main() -> None:
        limiter = trio.CapacityLimiter(PARALLEL_BLOBS)
        async with trio.open_nursery() as nursery:
            for desc in sorted(descs, key=lambda d: d.size, reverse=True):
                nursery.start_soon(lambda d=desc: trio.to_thread.run_sync(
                    copy_blob, source, dest, d, progress, limiter=limiter,
                    abandon_on_cancel=True))

    run_unwrapped(main)


# ---- login, logout, search ----

def default_registry() -> str:
    from rootless.image.registry.config import conf_load

    return conf_load().default


def registry_host(server: str | None) -> str:
    """docker login's SERVER: a host[:port], possibly written as a URL."""
    if not server:
        return default_registry()
    text = server
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    text = text.split("/", 1)[0]
    if not text:
        raise UsageError(f"invalid registry {server!r}")
    return "docker.io" if text in ("index.docker.io", "registry-1.docker.io") else text


def registry_login(server: str | None, user: str, password: str,
                   tls_verify: bool | None = None) -> str:
    from rootless.image.credentials import credentials_store

    host = registry_host(server)
    if not user or not password:
        raise UsageError("login needs a username and a password")
    registry = _registry(host, tls_verify, (user, password))
    try:
        registry.check_login()
    finally:
        registry.close()
    credentials_store(host, user, password)
    return host


def registry_logout(server: str | None) -> tuple[str, bool]:
    from rootless.image.credentials import credentials_erase

    host = registry_host(server)
    return host, credentials_erase(host)


class SearchResult(NamedTuple):
    name: str
    description: str
    stars: int
    official: bool
    automated: bool


def registry_search(term: str, limit: int = 25, filters: list[str] = (),
                    tls_verify: bool | None = None) -> list[SearchResult]:
    if not 1 <= limit <= 100:
        raise UsageError(f"limit {limit} is outside the range [1, 100]")
    stars, official, automated = _search_filters(filters)
    host, _, rest = term.partition("/")
    if rest and ("." in host or ":" in host or host == "localhost"):
        term = rest
    else:
        host = default_registry()
    registry = _registry(host, tls_verify)
    try:
        raw = registry.search(term, limit)
    finally:
        registry.close()
    results = [SearchResult(str(r.get("name", "")), str(r.get("description") or ""),
                            int(r.get("star_count") or 0), bool(r.get("is_official")),
                            bool(r.get("is_automated"))) for r in raw]
    results = [r for r in results if r.stars >= stars and
               (official is None or r.official == official) and
               (automated is None or r.automated == automated)]
    return results[:limit]


def _search_filters(filters) -> tuple[int, bool | None, bool | None]:
    stars, official, automated = 0, None, None
    for item in filters:
        key, sep, value = item.partition("=")
        try:
            if key == "stars" and sep:
                stars = int(value)
            elif key == "is-official" and value in ("true", "false"):
                official = value == "true"
            elif key == "is-automated" and value in ("true", "false"):
                automated = value == "true"
            else:
                raise ValueError
        except ValueError:
            raise UsageError(f"invalid filter {item!r} (want stars=N, is-official=true|"
                             "false or is-automated=true|false)") from None
    return stars, official, automated
