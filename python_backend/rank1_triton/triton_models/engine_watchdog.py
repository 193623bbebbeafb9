"""Reload the engine model when its process is gone, so that the server never reports ready while it cannot serve.

When the ``tensorrt_llm`` Python-backend stub dies (the OOM killer, a crash in native code), Triton keeps the
model "ready" and fails every request with "Stub process ... is not healthy" until it is reloaded. One entry
instance per server (the holder of a file lock) sends a one-token canary request to the engine model every
``interval_s``; when the answer says the engine's process is gone it unloads the engine model (the server turns
not-ready: Kubernetes stops routing to the pod), loads it again, and the server is ready once the engine is.
Triton's model-loading API needs ``--model-control-mode=explicit``.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import IO

from ..engines.base import GenerationRequest
from ..engines.triton_bls import TritonBLSEngine
from ..errors import EngineCallError

LOGGER = logging.getLogger("rank1_triton.watchdog")
DEAD_ENGINE_MARKERS = ("is not healthy", "stub process")
UNLOAD_TIMEOUT_S = 120.0


def engine_is_dead(message: str) -> bool:
    """Whether an engine error says its process is gone (as opposed to busy or rejecting the request)."""
    lowered = message.lower()
    return any(marker in lowered for marker in DEAD_ENGINE_MARKERS)


def lock_path(model_repository: str) -> Path:
    """One lock file per served repository: entry instances of one server share it, other servers do not."""
    digest = hashlib.sha256(str(Path(model_repository).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rank1-engine-watchdog-{digest}.lock"


class EngineWatchdog:
    """A daemon thread that probes the engine model and reloads it when its process has died."""

    def __init__(self, pb_utils: ModuleType, engine: TritonBLSEngine, canary: GenerationRequest, *,
                 interval_s: float, lock_file: Path) -> None:
        self._pb = pb_utils
        self._engine = engine
        self._canary = canary
        self._interval_s = interval_s
        self._lock_file = lock_file
        self._lock: IO[str] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload_pending = False  # a reload failed half-way: the engine may be unloaded, so load it again
        self._thread = threading.Thread(target=self._run, name="rank1-engine-watchdog", daemon=True)

    def start(self) -> None:
        """Start probing (every entry instance starts one; only the lock holder probes)."""
        self._thread.start()

    def poke(self) -> None:
        """Probe now rather than at the next interval (a request just saw the engine's process gone)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and release the lock (``finalize``)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self._interval_s + 5)
        if self._lock is not None:
            self._lock.close()

    def _holds_lock(self) -> bool:
        if self._lock is None:
            handle = self._lock_file.open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._lock = handle
            LOGGER.info("engine watchdog active in this instance (every %.1f s)", self._interval_s)
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._holds_lock():
                self.check()

    def check(self) -> bool:
        """Probe the engine once; reload it if its process is gone (or a reload did not finish). Returns whether
        it answered."""
        try:
            self._engine.generate([self._canary])
        except EngineCallError as error:
            if engine_is_dead(str(error)) or self._reload_pending:
                self._reload(str(error))
            else:
                LOGGER.debug("engine canary: %s", error)  # busy, or a reload by someone else: not a dead process
            return False
        self._reload_pending = False
        return True

    def _reload(self, reason: str) -> None:
        name = self._engine.model_name
        LOGGER.warning("engine model %r is not serving (%s): reloading it", name, reason)
        started = time.monotonic()
        self._reload_pending = True  # until the engine is loaded again
        try:
            if self._pb.is_model_ready(name):
                self._pb.unload_model(name)
            while self._pb.is_model_ready(name):
                if time.monotonic() - started > UNLOAD_TIMEOUT_S:
                    LOGGER.warning("engine model %r still unloading after %.0f s; next probe", name, UNLOAD_TIMEOUT_S)
                    return
                time.sleep(0.2)
            self._pb.load_model(name)
            self._reload_pending = False
        except Exception:  # the server keeps reporting not-ready; the next probe tries again
            LOGGER.exception("reloading engine model %r failed; the next probe tries again", name)
            return
        LOGGER.warning("engine model %r reloaded in %.1f s", name, time.monotonic() - started)
