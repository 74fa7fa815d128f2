"""Per-layer progress, as docker prints it.

On a terminal every layer keeps one line, rewritten in place as its state changes
("Downloading [=====>     ]  12.3MB/45.6MB", "Extracting", "Pull complete"; "Pushing
[==>  ] ...", "Pushed" for push). Anywhere
else each state change is a line of its own and byte counts are not printed, so logs
stay short. Updates come from several worker threads: one lock orders the writes, and
byte counts redraw at most every REDRAW seconds per layer.
"""

from __future__ import annotations

import sys
import threading
import time

BAR = 50
REDRAW = 0.1


class LayerProgress:
    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.order: list[str] = []  # layer ids, in the order their lines were printed
        self.last_draw: dict[str, float] = {}
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        """A line that is not a layer's (below every layer line on a terminal)."""
        with self.lock:
            self._write(text + "\n")
            if self.tty:
                self.order.clear()  # lines above this one are no longer redrawn

    def status(self, layer: str, text: str) -> None:
        with self.lock:
            self._show(layer, f"{layer}: {text}")

    def bytes(self, layer: str, done: int, total: int, verb: str = "Downloading") -> None:
        """Transfer progress; shown on a terminal only."""
        if not self.tty:
            return
        now = time.monotonic()
        with self.lock:
            if done < total and now - self.last_draw.get(layer, 0.0) < REDRAW:
                return
            self.last_draw[layer] = now
            self._show(layer, f"{layer}: {verb} {bar(done, total)}")

    def _show(self, layer: str, text: str) -> None:
        if not self.tty or layer not in self.order:
            if self.tty:
                self.order.append(layer)
            self._write(text + "\n")
            return
        up = len(self.order) - self.order.index(layer)
        # up to the layer's line, clear it, write, and back down to the bottom
        self._write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def bar(done: int, total: int) -> str:
    """docker's `[=====>      ]  12.3MB/45.6MB`."""
    from rootless.cli.image_views import human_size

    if total <= 0:
        return human_size(done, 4)
    filled = min(BAR, BAR * done // total)
    arrow = "=" * filled + (">" if filled < BAR else "")
    return f"[{arrow:<{BAR}}] {human_size(done, 4):>8}/{human_size(total, 4)}"


PULL_WORDS = {"exists": "Already exists", "pulling": "Pulling fs layer",
              "done": "Download complete", "complete": "Pull complete"}


def pull_progress(board: LayerProgress):
    """The pull's events (engine/registry.py Progress) drawn as docker draws them;
    shared by `pull` and by `run` when it pulls a missing image."""
    def progress(event: str, text: str, done: int, total: int) -> None:
        if event == "start":  # docker's "latest: Pulling from library/busybox"
            board.line(text)
        elif event == "digest":
            board.line(f"Digest: {text}")
        elif event == "downloading":
            board.bytes(text, done, total)
        elif event == "extracting":  # 0 bytes when it starts, then as it goes
            if board.tty:
                board.bytes(text, done, total, "Extracting")
            elif done == 0:
                board.status(text, "Extracting")
        elif event in PULL_WORDS:
            board.status(text, PULL_WORDS[event])

    return progress


def pull_status(result) -> str:
    """docker's last line of a pull."""
    state = "Downloaded newer image" if result.fetched else "Image is up to date"
    return f"Status: {state} for {result.reference}"
