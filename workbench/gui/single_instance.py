"""One window per user: `workbench FILE` hands FILE to a running window if there is one.

The running window listens on a QLocalServer whose name is per user and per settings
folder (so a test's or a smoke run's private profile never talks to the user's window).
A second `workbench FILE` connects, sends one JSON line `{"open": SOURCE, "options": {...}}`
with SOURCE made absolute against its own working folder, waits for `ok`, and exits 0.
If nothing answers, it removes a stale socket left by a crashed window and becomes the
listening window itself. `WORKBENCH_NEW_WINDOW=1` always starts a new window.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from workbench.core.session.settings import config_dir

log = logging.getLogger(__name__)

CONNECT_MS = 500
REPLY_MS = 3000
MAX_MESSAGE = 64 * 1024
ENV_NEW_WINDOW = "WORKBENCH_NEW_WINDOW"


def server_name() -> str:
    """`workbench-USER-HASH`: one name per user and settings folder."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name (a container without passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    folder = hashlib.sha1(str(config_dir().resolve()).encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() else "_" for c in user)[:32]
    return f"workbench-{safe}-{folder}"


def _absolute(source: str) -> str:
    """A path that exists is made absolute (the window has another working folder);
    anything else (zoo:NAME) is sent as it is."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def hand_off(source: str, options: dict[str, Any] | None = None,
             name: str | None = None) -> bool:
    """Send `source` to a running window; True when it accepted it."""
    if os.environ.get(ENV_NEW_WINDOW) == "1":
        return False
    socket = QLocalSocket()
    socket.connectToServer(name or server_name())
    if not socket.waitForConnected(CONNECT_MS):
        return False
    clean = {k: v for k, v in (options or {}).items() if v is not None}
    message = json.dumps({"open": _absolute(source), "options": clean}) + "\n"
    socket.write(message.encode())
    ok = socket.waitForBytesWritten(REPLY_MS) and socket.waitForReadyRead(REPLY_MS)
    reply = bytes(socket.readAll().data()).decode(errors="replace").strip() if ok else ""
    socket.disconnectFromServer()
    if reply != "ok":
        log.debug("the running window did not accept %s: %r", source, reply)
    return reply == "ok"


def parse_message(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """`(source, load options)` from one request, or None when it is not one."""
    try:
        message = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(message, dict) or not isinstance(message.get("open"), str):
        return None
    options = message.get("options") if isinstance(message.get("options"), dict) else {}
    if isinstance(options.get("input_shape"), list):
        options["input_shape"] = tuple(options["input_shape"])
    return message["open"], options


class InstanceServer(QObject):
    """Listens for `workbench FILE` from later launches; emits `open_requested`."""

    open_requested = Signal(str, dict)

    def __init__(self, parent: QObject | None = None, name: str | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)

    def listen(self) -> bool:
        """Start listening, taking over a stale socket; False if it cannot."""
        if self.server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)  # left behind by a window that crashed
        if self.server.listen(self.name):
            return True
        log.warning("cannot listen for other launches on %s: %s", self.name,
                    self.server.errorString())
        return False

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            buffer = bytearray()

            def read(s: QLocalSocket = socket, buf: bytearray = buffer) -> None:
                buf += bytes(s.readAll().data())
                if b"\n" not in buf and len(buf) < MAX_MESSAGE:
                    return
                request = parse_message(bytes(buf).split(b"\n", 1)[0])
                s.write(b"ok\n" if request else b"bad request\n")
                s.flush()
                s.disconnectFromServer()
                if request:
                    self.open_requested.emit(*request)

            socket.readyRead.connect(read)
            socket.disconnected.connect(socket.deleteLater)

    def close(self) -> None:
        """Stop listening (removes the socket file)."""
        self.server.close()


def serve_window(window: Any, name: str | None = None) -> InstanceServer | None:
    """Make `window` the one later launches hand their files to (None if it cannot)."""
    server = InstanceServer(window, name)
    if not server.listen():
        return None

    def open_it(source: str, options: dict[str, Any]) -> None:
        if window.isMinimized():
            window.showNormal()
        if QGuiApplication.platformName() != "offscreen":  # it cannot raise windows
            window.raise_()
            window.activateWindow()
        if (Path(source) / "project.db").is_file():
            window.open_project(source)
        else:
            window.open_source(source, **options)

    server.open_requested.connect(open_it)
    return server
