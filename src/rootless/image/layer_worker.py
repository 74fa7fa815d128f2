"""Unpack one layer in a process of its own:

    python -m rootless.image.layer_worker BLOB DEST WHAT PARENT_PID [IDS]

Unpacking is CPU work in Python (tar headers, decompression, hashing) that holds the
GIL for much of its time; a process per layer lets several layers of one image unpack
on several cores at once, as `tar -x` pipelines do. The engine starts and limits these
processes (engine/layer_unpack.py); this module only runs image/layers.unpack_layer on
the blob at BLOB into the existing empty directory DEST and reports on stdout, as one
JSON object (it dies with PARENT_PID: a killed pull leaves no unpacker running),
with IDS (kernel/storage_ns.StorageIds as JSON: a subordinate range) as root of a
storage namespace of its own, where the files get the tar's owners,
after lines {"progress": BYTES} (of the blob read so far, ten a second at most):
    {"diff_id": ..., "size": ..., "unapplied": {...}, "file_caps": {path: hex}}  exit 0
    {"error": "one-line message", "kind": "ImageError"|"StoreError"}  exit 1

It ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the parent
is the one to decide (it kills its workers and removes what they wrote), rather than a
worker racing it with a failure of its own.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from rootless.errors import RootlessError
    from rootless.image.compression import Counting
    from rootless.image.layers import unpack_layer

    blob, dest, what, parent = argv[:4]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(int(parent))
    try:
        ids = None
        if len(argv) > 4:  # before any thread starts: unshare(2) wants one
            from rootless.kernel.storage_ns import StorageIds, enter

            ids = StorageIds.from_json(argv[4])
            enter(ids.maps)
        with open(blob, "rb") as stream:
            counted = Counting(stream, _report_progress, every=0.1)
            result = unpack_layer(counted, Path(dest), what, ids=ids)
    except RootlessError as e:
        print(json.dumps({"error": str(e), "kind": type(e).__name__}))
        return 1
    except OSError as e:
        print(json.dumps({"error": f"cannot unpack {what}: {e}", "kind": "StoreError"}))
        return 1
    print(json.dumps({"diff_id": result.diff_id, "size": result.size,
                      "unapplied": result.unapplied_xattrs,
                      "file_caps": {p: v.hex() for p, v in result.file_caps.items()}}))
    return 0


def _report_progress(count: int) -> None:
    print(json.dumps({"progress": count}), flush=True)


def _die_with_parent(parent: int) -> None:
    import os
    import signal

    from rootless.kernel.constants import PR_SET_PDEATHSIG
    from rootless.kernel.syscalls import RealSyscalls

    RealSyscalls().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
