"""`cp`: files between a container and the host, with docker's rules (docker/cli's
cp.go and moby's pkg/archive copy.go, read, not copied).

    cp [-a] [-L] CONTAINER:SRC DEST|-        cp [-a] [-L] SRC|- CONTAINER:DEST

- A container path is relative to the container's `/`, cleaned lexically as docker
  cleans it (`a/../b` is `/b`); a trailing `/` or `/.` is kept, since it asserts a
  directory, and `SRC/.` copies the directory's contents rather than the directory.
- SRC's last component is not followed (the link itself is copied) unless -L, or the
  path asserts a directory. A missing SRC: "no such container:path: C:/x" (docker's
  words); a non-directory with a trailing `/`: "not a directory".
- Where the copy lands (moby's PrepareArchiveCopy): DEST an existing directory: into
  it, under SRC's name; DEST an existing file: replaced by a file SRC (a directory SRC is
  refused); DEST missing: made, as a copy of SRC (its parent must exist), but a
  file SRC cannot make a DEST that asserts a directory ("no such directory"). A DEST in
  the container that is a symlink is followed once, as docker's CLI follows it.
- `-` is a tar stream: to stdout for SRC's tar, from stdin into DEST, which must then
  be a directory (the stream is hostile: engine/cp_archive.py's extraction rules).
- Owners: files copied into a container belong to its root (the id the user's own maps
  to there); with -a they keep the archive's ids (the host file's numeric ids, or a
  tar's), and where the container's namespace has no such id, an ownership record as
  single-id mode keeps owners. Files copied out belong to the user (docker's CLI never
  chowns on the host either, -a or not).
- Every path inside the container is resolved by the one in-root resolver, in a helper
  process that works as the container's root (engine/cp_session.py), so a symlink to
  `/`, `../../..` or a host path is resolved inside the container, also while a process
  of the container swaps directories and symlinks (docker's CVE-2018-15664).

Every failure is a CopyError (exit 1, as docker's CLI exits for cp).
"""

from __future__ import annotations

import os
import stat
from typing import NamedTuple

from rootless.engine.cp_archive import CopyError, Extractor, TarWriter
from rootless.engine.cp_session import ContainerGone, Target, helper_start

# filesystems of a running container whose contents a copy of a directory above them
# leaves out (docker cannot reach them at all): reading /proc or /sys is neither the
# container's files nor harmless
_PSEUDO_FILESYSTEMS = frozenset({"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2",
                                 "securityfs", "debugfs", "tracefs"})
_O_PATH = os.O_PATH | os.O_CLOEXEC


class CopyResult(NamedTuple):
    size: int  # bytes of regular files copied
    dest: str  # where to, as docker's "Successfully copied ... to DEST" names it


class CpPath(NamedTuple):
    """A path as docker keeps one: cleaned lexically below `/`, with its assertion."""
    text: str  # as the user wrote it, for messages
    parts: tuple[str, ...]
    marker: str  # "/." (the contents), "/" (a directory) or ""

    @property
    def base(self) -> str:
        """The name the entry has in a tar: "." for a directory's contents."""
        return "." if self.marker == "/." or not self.parts else self.parts[-1]

    @property
    def rel(self) -> str:
        return "/".join(self.parts)


class Dest(NamedTuple):
    path: CpPath
    exists: bool
    is_dir: bool


class Source(NamedTuple):
    fd: int  # O_PATH, on the host
    is_dir: bool
    base: str


def path_clean(text: str) -> CpPath:
    parts: list[str] = []
    for part in text.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    marker = "/." if text == "." or text.endswith("/.") else "/" if text.endswith("/") else ""
    return CpPath(text, tuple(parts), marker)


def split_cp_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: (container, path); no container for a local path (an
    absolute one, one without `:`, or one starting with `.` such as ./a:b)."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def copy_plan(src_is_dir: bool, src_base: str, dst: Dest, shown: str) -> tuple[
        tuple[str, ...], str | None]:
    """moby's PrepareArchiveCopy: (the directory to extract into, the name SRC's top
    entry takes there, or None for its own)."""
    parts, marker = dst.path.parts, dst.path.marker
    if dst.exists and dst.is_dir:
        return parts, None
    if dst.exists and src_is_dir:
        raise CopyError(f"cannot copy a directory to the file {shown}")
    if not dst.exists and not src_is_dir and marker:
        raise CopyError(f"no such directory: {shown}")
    if marker == "/.":
        return parts, "."
    return parts[:-1], (parts[-1] if parts else ".")


def container_cp(store, source: str, dest: str, archive: bool,
                 follow: bool) -> CopyResult | None:
    if not source:
        raise CopyError("source can not be empty")
    if not dest:
        raise CopyError("destination can not be empty")
    src_ctr, src_path = split_cp_arg(source)
    dst_ctr, dst_path = split_cp_arg(dest)
    if src_ctr and dst_ctr:
        raise CopyError("copying between containers is not supported")
    if not (src_ctr or dst_ctr):
        raise CopyError("must specify at least one container source")
    def copy(target: Target) -> CopyResult | None:
        if src_ctr:
            return _copy_out(target, path_clean(src_path), dst_path, follow)
        return _copy_in(target, src_path, path_clean(dst_path), archive, follow)

    ref = src_ctr or dst_ctr
    target = _target(store, ref)
    if target.pid is not None:
        try:
            return copy(target)
        except ContainerGone:  # it stopped between the lookup and the copy
            pass
    from rootless.engine.containers import container_lookup, container_op_lock

    # A stopped container's root is mounted by the copy itself: under the container's
    # op lock, which `start` and the monitor's restarts also take, so its upper and
    # work directories are never mounted twice at once.
    with container_op_lock(store, container_lookup(store, ref).id):
        target = _target(store, ref)
        try:
            return copy(target)
        except ContainerGone:
            pass
    raise CopyError(f"container {target.ref} changed state during the copy: try again")


def _target(store, ref: str) -> Target:
    from rootless.engine.container_inspect import spec_read
    from rootless.engine.containers import container_dir, container_lookup, container_row

    record = container_lookup(store, ref)
    row = container_row(store, record.id)
    spec, _ = spec_read(container_dir(store, record.id) / "config.json")
    if not spec:
        raise CopyError(f"container {ref} has no usable config.json: cannot copy")
    state = row.state if row is not None else "exited"
    if state == "running":
        from rootless.engine.exec import init_process

        pid, start = init_process(row)
        return Target(ref, pid, start, spec)
    if state == "paused" and row.pid is not None:  # stopped processes: its mounts stand
        return Target(ref, row.pid, row.init_start, spec)
    return Target(ref, None, None, spec)


# ---- from the container ----

def _copy_out(target: Target, src: CpPath, dest: str, follow: bool) -> CopyResult | None:
    host = None if dest == "-" else _host_dest(dest)
    data_r, data_w = (None, None) if host is None else os.pipe2(os.O_CLOEXEC)
    out_fd = 1 if data_w is None else data_w

    def work(root_fd: int, report) -> None:  # in the helper, as the container's root
        skip = _pseudo_devs(root_fd, target)
        fd = _open_source(root_fd, src, follow, target.ref)
        top = src.base
        if host is not None:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            into, name = copy_plan(is_dir, top, host, host.path.text)
            top = name or top
            report({"dir": list(into)})
        writer = TarWriter(out_fd, records=True, skip_devs=skip)
        try:
            writer.tree(fd, top)
            writer.finish()
        except BrokenPipeError:
            if host is not None:
                raise
            # stdout's reader went away (`| head`): docker's CLI stops quietly too
        report({"done": writer.size})

    helper = helper_start(target, work, child_closes=() if data_r is None else (data_r,))
    try:
        if data_w is None:
            helper.next_report()
            helper.wait()
            return None
        os.close(data_w)
        data_w = None
        into = "/" + "/".join(helper.next_report()["dir"])
        size = _extract_on_host(data_r, into)
        helper.next_report()
        helper.wait()
    except BaseException:
        helper.kill()
        raise
    finally:
        for fd in (data_r, data_w):
            if fd is not None:
                os.close(fd)
    return CopyResult(size, os.path.abspath(dest))


def _extract_on_host(data_r: int, into: str) -> int:
    try:
        root = os.open(into, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CopyError(f"cannot copy to {into}: {(e.strerror or str(e)).lower()}") from None
    try:
        extractor = Extractor(root, into, host=True)
        with open(data_r, "rb", closefd=False) as stream:
            extractor.run(stream)
            while stream.read(1 << 16):  # the helper's padding after the tar's end
                pass
    finally:
        os.close(root)
    return extractor.size


def _open_source(root_fd: int, src: CpPath, follow: bool, ref: str) -> int:
    """O_PATH descriptor of SRC in the container; its last component followed (inside
    the root) with -L or when the path asserts a directory."""
    from rootless.kernel.paths import open_in_root, parent_fd_in_root

    shown = f"{ref}:{src.text}"
    try:
        if not src.parts:
            fd = os.open(".", _O_PATH | os.O_DIRECTORY, dir_fd=root_fd)
        elif follow or src.marker:
            fd = open_in_root(root_fd, src.rel, _O_PATH)
        else:
            parent, name = parent_fd_in_root(root_fd, src.rel)
            try:
                fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=parent)
            finally:
                os.close(parent)
    except FileNotFoundError:
        raise CopyError(f"no such container:path: {shown}") from None
    except OSError as e:
        raise CopyError(f"{shown}: {os.strerror(e.errno).lower()}") from None
    if src.marker and not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise CopyError(f"{shown}: not a directory")
    return fd


def _pseudo_devs(root_fd: int, target: Target) -> frozenset[int]:
    """The devices of a running container's /proc, /sys and the like (its spec's
    mounts of those types), as mounted: directories on them are copied empty."""
    from rootless.kernel.paths import open_in_root

    if target.pid is None:
        return frozenset()
    devs = set()
    for mount in target.spec.get("mounts") or []:
        if not (isinstance(mount, dict) and mount.get("type") in _PSEUDO_FILESYSTEMS
                and isinstance(mount.get("destination"), str)):
            continue
        try:
            fd = open_in_root(root_fd, mount["destination"].lstrip("/") or ".",
                              _O_PATH | os.O_DIRECTORY)
        except OSError:
            continue
        devs.add(os.fstat(fd).st_dev)
        os.close(fd)
    return frozenset(devs)


def _host_dest(text: str) -> Dest:
    """DEST on the host, as docker's CLI checks it (ValidateOutputPath, then
    CopyInfoDestinationPath: symlinks at the end followed, up to 10)."""
    path = _host_path(text)
    parent = "/" + "/".join(path.parts[:-1])
    if not os.path.isdir(parent):
        raise CopyError(f'invalid output path: directory "{parent}" does not exist')
    try:
        st = os.stat(text)
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise CopyError(f'invalid output path: "{text}" must be a directory or a '
                            "regular file")
    except FileNotFoundError:
        pass
    except OSError as e:
        raise CopyError(f"{text}: {(e.strerror or str(e)).lower()}") from None
    for _ in range(11):
        current = "/" + path.rel + path.marker.rstrip(".")
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return Dest(path, False, False)
        except OSError as e:
            raise CopyError(f"{text}: {(e.strerror or str(e)).lower()}") from None
        if not stat.S_ISLNK(st.st_mode):
            return Dest(path, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(current)
        if not target.startswith("/"):
            target = "/" + "/".join(path.parts[:-1]) + "/" + target
        path = path_clean(target)._replace(text=text)
    raise CopyError(f"too many symlinks in {text}")


def _host_path(text: str) -> CpPath:
    """An absolute host path, with the trailing `/` or `/.` docker preserves."""
    cleaned = path_clean(text)
    return path_clean(os.path.abspath(text) + cleaned.marker)._replace(text=text)


# ---- into the container ----

def _copy_in(target: Target, source_text: str, dst: CpPath, archive: bool,
             follow: bool) -> CopyResult:
    source = None if source_text == "-" else _host_source(source_text, follow)
    data_r, data_w = (None, None) if source is None else os.pipe2(os.O_CLOEXEC)
    in_fd = 0 if data_r is None else data_r
    def work(root_fd: int, report) -> None:  # in the helper, as the container's root
        dest = _container_dest(root_fd, dst, target.ref)
        if source is None:
            if not (dest.exists and dest.is_dir):
                raise CopyError(f'destination "{target.ref}:{dst.text}" must be a directory')
            into, rebase = dest.path.parts, None
        else:
            into, name = copy_plan(source.is_dir, source.base, dest,
                                   f"{target.ref}:{dst.text}")
            rebase = None if name is None else (source.base, name)
        dir_fd = _open_extraction_dir(root_fd, into, target.ref)
        extractor = Extractor(dir_fd, f"{target.ref}:/{'/'.join(into)}", chown=archive,
                              rebase=rebase)
        with open(in_fd, "rb", closefd=False) as stream:
            extractor.run(stream)
        report({"done": extractor.size, "dest": "/" + dest.path.rel})

    closes = () if source is None else (data_w, source.fd)
    try:
        helper = helper_start(target, work, child_closes=closes)
    except BaseException:
        for fd in (data_r, data_w, source.fd if source else None):
            if fd is not None:
                os.close(fd)
        raise
    try:
        if source is not None:
            os.close(data_r)
            data_r = None
            _send_source(source, data_w)
            os.close(data_w)
            data_w = None
        done = helper.next_report()
        helper.wait()
    except BaseException:
        helper.kill()
        raise
    finally:
        for fd in (data_r, data_w, source.fd if source else None):
            if fd is not None:
                os.close(fd)
    return CopyResult(int(done.get("done", 0)), f"{target.ref}:{done.get('dest', dst.text)}")


def _send_source(source: Source, data_w: int) -> None:
    """The host's SRC as a tar, into the helper's pipe; a helper that stopped reading
    (it failed, and says why in its report) ends the stream."""
    writer = TarWriter(data_w, records=False)
    try:
        writer.tree(source.fd, source.base)
        writer.finish()
    except BrokenPipeError:
        pass
    except OSError as e:
        raise CopyError(f"cannot read {e.filename or 'the source'}: "
                        f"{(e.strerror or str(e)).lower()}") from None


def _host_source(text: str, follow: bool) -> Source:
    """SRC on the host (docker's CopyInfoSourcePath): its last component followed with
    -L or when the path asserts a directory, else the symlink itself is copied."""
    path = _host_path(text)
    flags = _O_PATH | (0 if follow or path.marker else os.O_NOFOLLOW)
    full = "/" + path.rel + path.marker
    try:
        fd = os.open(full.replace("//", "/"), flags)
    except OSError as e:
        raise CopyError(f"lstat {text}: {(e.strerror or str(e)).lower()}") from None
    return Source(fd, stat.S_ISDIR(os.fstat(fd).st_mode), path.base)


def _container_dest(root_fd: int, dst: CpPath, ref: str) -> Dest:
    """DEST in the container, as docker's CLI stats it: a symlink followed once (its
    target, a container path, resolved in the root like any other); any other error
    means "does not exist" and the extraction decides."""
    found = _lstat_in(root_fd, dst)
    path = dst
    if found is not None and stat.S_ISLNK(found[0].st_mode):
        target = found[1]
        if not target.startswith("/"):
            target = "/" + "/".join(dst.parts[:-1]) + "/" + target
        path = path_clean(target)._replace(text=dst.text)
        found = _lstat_in(root_fd, path)
    if found is None:
        return Dest(path, False, False)
    mode = found[0].st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise CopyError(f'destination "{ref}:{dst.text}" must be a directory or a regular '
                        "file: got a device")
    return Dest(path, True, stat.S_ISDIR(mode))


def _lstat_in(root_fd: int, path: CpPath) -> tuple[os.stat_result, str] | None:
    """(lstat of `path` in the root, its link text), None if it cannot be had."""
    from rootless.kernel.paths import open_in_root, parent_fd_in_root

    try:
        if not path.parts:
            return os.stat(root_fd), ""
        if path.marker:
            fd = open_in_root(root_fd, path.rel, _O_PATH | os.O_DIRECTORY)
            try:
                return os.fstat(fd), ""
            finally:
                os.close(fd)
        parent, name = parent_fd_in_root(root_fd, path.rel)
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            link = os.readlink(name, dir_fd=parent) if stat.S_ISLNK(st.st_mode) else ""
            return st, link
        finally:
            os.close(parent)
    except OSError:
        return None


def _open_extraction_dir(root_fd: int, parts: tuple[str, ...], ref: str) -> int:
    from rootless.kernel.paths import open_in_root

    shown = f"{ref}:/{'/'.join(parts)}"
    try:
        return open_in_root(root_fd, "/".join(parts) or ".", _O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        raise CopyError(f"no such container:path: {shown}") from None
    except NotADirectoryError:
        raise CopyError(f"extraction point is not a directory: {shown}") from None
    except OSError as e:
        raise CopyError(f"{shown}: {os.strerror(e.errno).lower()}") from None
