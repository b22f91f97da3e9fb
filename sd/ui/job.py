"""One generation run in a background thread, reporting each frame, and stoppable.

The page polls `events()` for previews. `stop()` makes the driver's per-frame callback raise Stopped, so the
run ends at the next frame, before anything is written: the driver writes its output and sidecar only once
all frames exist, each under a temporary name renamed when complete, so a stopped run leaves nothing.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from PIL import Image


class Stopped(Exception):
    """Raised inside the driver's per-frame callback when the user pressed Stop."""


@dataclass
class Event:
    kind: str  # "frame", "done", "stopped", "error"
    image: Image.Image | None = None
    done: int = 0
    total: int = 0
    result: Any = None
    message: str = ""


@dataclass
class Job:
    run: Any  # callable(on_frame) -> result; typically a partial of animate()
    _events: queue.Queue = field(default_factory=queue.Queue)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def on_frame(self, image: Image.Image, done: int, total: int) -> None:
        if self._stop.is_set():
            raise Stopped
        self._events.put(Event("frame", image, done, total))

    def _main(self) -> None:
        from sd.errors import UserError

        try:
            result = self.run(self.on_frame)
            self._events.put(Event("done", result=result))
        except Stopped:
            self._events.put(Event("stopped"))
        except UserError as error:
            self._events.put(Event("error", message=str(error)))
        except Exception as error:  # shown on the page; the server keeps running
            self._events.put(Event("error", message=f"{type(error).__name__}: {error}"))

    def start(self) -> Job:
        self._thread = threading.Thread(target=self._main, daemon=True, name="sd-ui-job")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def events(self):
        """Events until the run ends (done, stopped or error), the last one included."""
        while True:
            event = self._events.get()
            yield event
            if event.kind != "frame":
                return
