"""COPY and ADD: the files a step copies, planned first (their digest is part of the
step's cache key), then written as the step's layer.

Sources, as docker's builder reads them: paths or globs in the context (what
.dockerignore excludes is not there), heredocs (`COPY <<EOF /dest`), with --from a
path in another stage's or image's files (owners kept), and for ADD a local tar
(unpacked, compressed or not, owners kept) or a URL (downloaded, mode 0600, not
unpacked; --checksum verified). Everything else arrives owned by --chown's ids (0:0 by
default) with --chmod's mode if given.

Where the stage has files, the sources are written into a created container of its
image (engine/build_copy.py) and the container's changes are the layer, so symlinks and
directories of the image on the way are honoured. A stage with no files yet
(`FROM scratch`) gets the layer written directly as a tar.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterator

from rootless.build import instructions as ins
from rootless.engine.build_context import BuildError, entry_info
from rootless.errors import ImageError

Member = tuple[tarfile.TarInfo, Callable[[], io.IOBase] | None]


class Source:
    """One source: its digest, whether it is a directory's contents, the name a
    single file takes, and its tar members (names relative to where it lands)."""

    def __init__(self, digest: str, is_dir: bool, name: str | None,
                 members: Callable[[], Iterator[Member]], archive: bool = False) -> None:
        self.digest, self.is_dir, self.name = digest, is_dir, name
        self.members, self.archive = members, archive


def plan(builder, state, step, words: dict) -> list[Source]:
    owner = _owner(builder, state, words.get("chown"), step)
    chmod = _chmod(builder, words.get("chmod"), step)
    sources: list[Source] = []
    for doc in step.heredocs:
        sources.append(_heredoc(doc, state.env(), owner, chmod))
    texts = [s for s in words["sources"] if not s.startswith("<<")]
    from_ = words.get("from")
    for text in texts:
        if from_:
            sources.append(_from_image(builder, step, from_, text, owner if words.get(
                "chown") else None, chmod))
        elif type(step) is ins.Add and text.startswith(("http://", "https://")):
            sources.append(_url(builder, step, text, owner, chmod))
        else:
            sources += _context(builder, step, text, owner, chmod)
    if not sources:
        raise builder._error(step, f"{step.raw.keyword} requires at least two arguments")
    return sources


def write(builder, state, step, words: dict, sources: list[Source], key: str) -> str:
    from rootless.engine.build import add_history, next_config

    dest = _destination(state, words["dest"])
    into_dir = (dest.endswith("/") or len(sources) > 1
                or any(s.is_dir or s.archive for s in sources))
    dest = posixpath.normpath(dest)
    config = next_config(state.config)
    digest = hashlib.sha256("".join(s.digest for s in sources).encode()).hexdigest()
    add_history(config, f"/bin/sh -c #(nop) {step.raw.keyword} "
                f"{'dir' if into_dir else 'file'}:{digest} in {dest} ", empty=False)
    layer = builder.store.temp_path("build-layer")
    sources = _charged(sources, layer.parent, f"{step.raw.keyword} to {dest}")
    try:
        if state.image_id is None or not state.config.get("rootfs", {}).get("diff_ids"):
            _scratch_layer(layer, dest, into_dir, sources)
        else:
            _container_layer(builder, state, layer, dest, into_dir, sources)
    except ImageError as e:
        layer.unlink(missing_ok=True)
        raise builder._error(step, str(e)) from None
    try:
        return builder._store(state, config, layer, key)
    finally:
        layer.unlink(missing_ok=True)


def _charged(sources: list[Source], where, what: str) -> list[Source]:
    """The sources, their data counted against the store's free space as it is read
    (store/space.py: ROOTLESS_LAYER_LIMIT, and the filesystem's reserve always): a
    source may be a hostile tar whose few KiB declare a sparse file of terabytes, which
    reads, and is written, as that many zeros."""
    from rootless.store.space import SpaceGuard, layer_limit

    guard = SpaceGuard(where, what, layer_limit())

    def charged(source: Source) -> Source:
        def members() -> Iterator[Member]:
            for info, data in source.members():
                yield info, None if data is None else (
                    lambda data=data: _Charged(data(), guard))
        return Source(source.digest, source.is_dir, source.name, members, source.archive)
    return [charged(s) for s in sources]


class _Charged(io.RawIOBase):
    """A stream whose reads are charged to a SpaceGuard."""

    def __init__(self, stream, guard) -> None:
        self.stream, self.guard = stream, guard

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.guard.charge(len(data))
        return data

    def close(self) -> None:
        self.stream.close()
        super().close()


def workdir_missing(builder, state, path: str) -> bool:
    """WORKDIR's directory is not in the stage's files yet."""
    parts = [p for p in path.split("/") if p]
    return _existing_depth(builder, state, parts) < len(parts)


def _existing_depth(builder, state, parts: list[str]) -> int:
    """How many leading components of `parts` the stage's files already have (one that
    cannot be looked at, as a 0700 directory of subordinate ids, counts as there: run
    makes a missing working directory anyway)."""
    from rootless.kernel.paths import open_in_layers

    fds: list[int] = []
    try:
        for layer in reversed(builder.layer_dirs(state.image_id)):
            fds.append(os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        if not fds:
            return 0
        for depth in range(len(parts), 0, -1):
            try:
                os.close(open_in_layers(fds, "/".join(parts[:depth])))
                return depth
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                return depth
        return 0
    finally:
        for fd in fds:
            os.close(fd)


def workdir_layer(builder, state, path: str, config: dict, key: str) -> str:
    """The directories WORKDIR names that are missing, made 0755 as BuildKit makes them
    (dockerfile2llb's dispatchWorkdir: llb.Mkdir with parents, WithUser(USER)): owned
    by the stage's USER, and only those it makes; one already there is left as it is."""
    from rootless.engine.build import add_history

    add_history(config, f"/bin/sh -c #(nop) WORKDIR {path}", empty=False)
    parts = [p for p in path.split("/") if p]
    depth = _existing_depth(builder, state, parts)
    uid, gid = _workdir_owner(builder, state)

    def members() -> Iterator[Member]:
        for i in range(depth + 1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[depth:i]))
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
            yield info, None
    made = Source("", True, None, members)
    base = posixpath.join("/", *parts[:depth], "")
    layer = builder.store.temp_path("build-layer")
    try:
        if not state.config.get("rootfs", {}).get("diff_ids"):
            _scratch_layer(layer, base, True, [made])
        else:
            _container_layer(builder, state, layer, base, True, [made])
        return builder._store(state, config, layer, key)
    finally:
        layer.unlink(missing_ok=True)


def _workdir_owner(builder, state) -> tuple[int, int]:
    """BuildKit's owner for what WORKDIR makes (solver/llbsolver/file/user_linux.go,
    readUser): a number is the uid and the gid both; a name is looked up in the image's
    /etc/passwd (its uid and gid), root when it is not there; after ':' a number is the
    gid, a name is looked up in /etc/group (the gid stays when it is not there)."""
    from rootless.engine.users import UserLookupError, name_or_id, read_image_file

    spec = state.config.get("config", {}).get("User") or ""
    if not spec:
        return 0, 0
    user, _, group = spec.partition(":")
    try:
        user_id = name_or_id(user, "user")
        group_id = name_or_id(group, "group") if group else None
        dirs = builder.layer_dirs(state.image_id)
        uid = gid = user_id if isinstance(user_id, int) else 0
        if isinstance(user_id, str):
            uid, gid = _id_pair(read_image_file(dirs, "/etc/passwd"), user_id, (2, 3),
                                (0, 0))
        if isinstance(group_id, int):
            gid = group_id
        elif group_id is not None:
            gid = _id_pair(read_image_file(dirs, "/etc/group"), group_id, (2, 2),
                           (gid, gid))[0]
    except UserLookupError as e:
        raise BuildError(f"WORKDIR after USER {spec}: {e}") from None
    return uid, gid


def _id_pair(text: str | None, name: str, fields: tuple[int, int],
             missing: tuple[int, int]) -> tuple[int, int]:
    """The two id fields of `name`'s line in a passwd or group file; `missing` when no
    line names it. An id that is no valid id is refused, never taken as -1."""
    from rootless.engine.users import UserLookupError
    from rootless.kernel.idmap import ID_RANGE, parse_id, valid_id

    for line in (text or "").splitlines():
        entry = line.split(":")
        if entry[0] != name or len(entry) <= max(fields):
            continue
        ids = [parse_id(entry[i]) for i in fields]
        if any(i is None or not valid_id(i) for i in ids):
            raise UserLookupError(f"the image's line for {name!r} has an invalid id: "
                                  f"{ID_RANGE}")
        return ids[0], ids[1]
    return missing


def _destination(state, dest: str) -> str:
    """Relative to WORKDIR; a trailing `/` (or `.`) asserts a directory."""
    wants_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    if not dest.startswith("/"):
        base = state.config.get("config", {}).get("WorkingDir") or "/"
        dest = posixpath.join(base, dest)
    dest = posixpath.normpath(dest)
    return dest.rstrip("/") + "/" if wants_dir else dest


# ---- writing ----

def _container_layer(builder, state, layer, dest: str, into_dir: bool,
                     sources: list[Source]) -> None:
    from rootless.engine.build_copy import copy_into
    from rootless.engine.build_run import _remove
    from rootless.engine.commit import _write_layer
    from rootless.engine.container_fs import StoppedContainer

    name = _created(builder, state.image_id)
    try:
        for source in sources:
            def feed(out, source=source) -> None:
                _write_members(out, source.members())
            copy_into(builder.store, _id_of(builder.store, name), dest, into_dir,
                      source.name, feed, own_root=source.archive)
        _write_layer(StoppedContainer(builder.store, name, "commit"), layer)
    finally:
        _remove(builder.store, name)


def _scratch_layer(layer, dest: str, into_dir: bool, sources: list[Source]) -> None:
    """The layer of a stage with no files: its parents, then the sources under dest
    (an ADDed tar's '.' entry, written after the parents, replaces the landing
    directory's entry, or is the layer's root entry when it lands at /)."""
    rel = dest.strip("/")
    if into_dir:
        landing, rename = rel, None
    else:
        landing, rename = posixpath.dirname(rel), posixpath.basename(rel)
    with open(layer, "wb") as out, tarfile.open(fileobj=out, mode="w|",
                                                format=tarfile.PAX_FORMAT) as tar:
        parts = [p for p in landing.split("/") if p]
        for i in range(len(parts)):
            info = tarfile.TarInfo("/".join(parts[:i + 1]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for source in sources:
            for info, data in source.members():
                name = "/".join(p for p in info.name.split("/") if p not in ("", "."))
                if rename is not None and name == source.name:
                    name = rename
                if not name:
                    if source.archive and info.isdir():
                        # an ADDed tar's '.' entry owns where it lands, as moby's Untar
                        # applies it there: the landing directory, or the layer's root
                        info.name = landing or "."
                        tar.addfile(info)
                    continue
                info.name = f"{landing}/{name}" if landing else name
                _add(tar, info, data)
        end = tar.offset + 2 * tarfile.BLOCKSIZE
    os.truncate(layer, end)  # tarfile's 10 KiB record padding is no part of a layer


def _write_members(out, members: Iterator[Member]) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            _add(tar, info, data)


def _add(tar, info: tarfile.TarInfo, data) -> None:
    if data is None:
        tar.addfile(info)
        return
    with data() as stream:
        tar.addfile(info, stream)


def _created(builder, image_id: str) -> str:
    """A created container of `image_id`, never started: the copy's target."""
    from rootless.engine.run import RunOptions, container_create_from

    name = "rootless-build-" + os.urandom(6).hex()
    container_create_from(builder.store, RunOptions(
        image=image_id, command=("/",), entrypoint="", user="0:0", name=name,
        network="none", pull="never"))
    return name


def _id_of(store, name: str) -> str:
    from rootless.engine.containers import container_lookup

    return container_lookup(store, name).id


# ---- sources ----

def _context(builder, step, text: str, owner, chmod) -> list[Source]:
    ctx = builder.source.context
    excluded = _excluder(step)
    unpack = getattr(step, "unpack", None) is not False
    found = []
    parents = bool(getattr(step, "parents", False))  # --parents: the source's own path
    for sel in ctx.select(text):
        top = sel.rel if parents else "" if sel.is_dir else sel.base
        entries = [e for e in ctx.entries(sel, top) if not excluded(e.name)]
        if not entries and not sel.is_dir:
            continue
        if type(step) is ins.Add and unpack and not sel.is_dir and _is_archive(ctx, sel.rel):
            found.append(_archive(ctx, sel.rel, ctx.digest(entries)))
            continue

        def members(entries=entries) -> Iterator[Member]:
            for e in entries:
                info = entry_info(e, owner, chmod)
                opener = (lambda e=e: ctx._open_file(e.rel)) if info.isreg() else None
                yield info, opener
        is_dir = sel.is_dir or parents  # --parents lands inside the destination
        found.append(Source(ctx.digest(entries), is_dir, None if is_dir else sel.base,
                            members))
    return found


def _excluder(step) -> Callable[[str], bool]:
    """--exclude=PATTERN: .dockerignore's rules, over the names below each source."""
    patterns = getattr(step, "exclude", ())
    if not patterns:
        return lambda name: False
    from rootless.build.ignore import DockerIgnore

    matcher = DockerIgnore("\n".join(patterns), "--exclude")
    return lambda name: bool(name) and matcher.excluded(name)


def _is_archive(ctx, rel: str) -> bool:
    with ctx._open_file(rel) as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        try:
            with ctx._open_file(rel) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
                return tar.next() is not None
        except (tarfile.TarError, OSError, EOFError):
            return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def _archive(ctx, rel: str, digest: str) -> Source:
    def members() -> Iterator[Member]:
        from rootless.image.layer_tar import BoundedInfo

        with ctx._open_file(rel) as f, tarfile.open(fileobj=f, mode="r|*",
                                                     tarinfo=BoundedInfo) as tar:
            yield from _streamed(tar)
    return Source(digest, True, None, members, archive=True)


def _streamed(tar, owner=None, chmod=None, top: bool = True) -> Iterator[Member]:
    """The members of a tar read as a stream, each regular one's data streamed from
    the archive, never read whole (the archive is hostile: a member may declare any
    size, or be a sparse file of terabytes). The opener must be called, and its data
    read, before the next member is asked for: a stream only goes forward. `owner` and
    `chmod` replace the members' own; `top=False` leaves the '.' entry out."""
    while (info := tar.next()) is not None:
        tar.members.clear()
        if not top and info.name in (".", "./"):
            continue
        shown = _plain(info)
        if owner is not None:
            shown.uid, shown.gid = owner
            shown.uname = shown.gname = ""
        if chmod is not None and not shown.issym():
            shown.mode = chmod
        if info.isreg():
            yield shown, (lambda info=info: tar.extractfile(info))
        else:
            yield shown, None


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy of `info` as it is written again: a sparse member becomes the plain
    regular file it reads as (tarfile writes no sparse maps, and a GNU 'S' header or a
    GNU.sparse PAX record without its map would make the next reader misread it)."""
    import copy

    shown = copy.copy(info)
    shown.pax_headers = {k: v for k, v in info.pax_headers.items()
                         if not k.startswith("GNU.sparse.")}
    if info.sparse is not None or info.type == tarfile.GNUTYPE_SPARSE:
        shown.type, shown.sparse = tarfile.REGTYPE, None
    return shown


def _heredoc(doc, env, owner, chmod) -> Source:
    from rootless.build.expand import ExpandError, expand_heredoc

    body = doc.body
    if doc.expand:
        try:
            body = expand_heredoc(body, env)
        except ExpandError as e:
            raise BuildError(str(e)) from None
    data = body.encode()
    info = tarfile.TarInfo(doc.name)
    info.size, info.mode = len(data), 0o644 if chmod is None else chmod
    info.uid, info.gid = owner
    return Source("heredoc:" + hashlib.sha256(data).hexdigest(), False, doc.name,
                  lambda: iter([(info, lambda: io.BytesIO(data))]))


def _url(builder, step, url: str, owner, chmod) -> Source:
    """The URL's body, spooled to a file in this command's tmp/ (removed when the
    build ends, or by the next command if this one is killed), never held in memory."""
    from rootless.engine.build_fetch import fetch

    path = str(builder.store.temp_path("build-url"))
    builder.cleanup.append(path)
    digest, size, mtime = fetch(url, getattr(step, "checksum", None), path)
    name = posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "index.html"
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600 if chmod is None else chmod, mtime
    info.uid, info.gid = owner
    return Source("url:" + digest, False, name,
                  lambda: iter([(info, lambda: open(path, "rb"))]))


def _from_image(builder, step, from_: str, src: str, owner, chmod) -> Source:
    """A path in another stage's (or image's) files, through a created container."""
    from rootless.engine.build_copy import tar_from
    from rootless.engine.build_run import _remove

    image_id = builder.stage_image(from_, step)
    name = _created(builder, image_id)
    path = str(builder.store.temp_path("build-from"))
    try:
        is_dir = tar_from(builder.store, _id_of(builder.store, name), src, path)
    finally:
        _remove(builder.store, name)
    builder.cleanup.append(path)
    base = posixpath.basename(src.rstrip("/")) or "."

    def members() -> Iterator[Member]:
        from rootless.image.layer_tar import BoundedInfo

        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|",
                                                 tarinfo=BoundedInfo) as tar:
            yield from _streamed(tar, owner, chmod, top=False)
    return Source(f"from:{image_id}:{src}", is_dir, None if is_dir else base, members)


# ---- --chown, --chmod ----

def _owner(builder, state, chown: str | None, step) -> tuple[int, int]:
    if not chown:
        return 0, 0
    from rootless.engine.users import UserLookupError, name_or_id, resolve_user

    user, _, group = chown.partition(":")
    try:
        uid_or_name = name_or_id(user, "user")
        gid_or_name = name_or_id(group, "group") if group else None
        if isinstance(uid_or_name, int) and (gid_or_name is None or
                                             isinstance(gid_or_name, int)):
            return uid_or_name, uid_or_name if gid_or_name is None else gid_or_name
        dirs = builder.layer_dirs(state.image_id)
        found = resolve_user(dirs, chown if group else user)
        return found.uid, found.gid if group else found.uid
    except UserLookupError as e:
        raise builder._error(step, f"unable to convert uid/gid chown string to host "
                             f"mapping: {e}") from None


def _chmod(builder, chmod: str | None, step) -> int | None:
    if not chmod:
        return None
    try:
        mode = int(chmod, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise builder._error(step, f"invalid chmod parameter {chmod!r}: an octal mode, "
                             "such as 755")
    return mode
