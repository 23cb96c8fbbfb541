"""A TCP proxy to a server that a test can cut and restore: the server gone from under a
running process, and back."""

from __future__ import annotations

import contextlib
import socket
import threading


class Cuttable:
    """Forwards 127.0.0.1:`port` to `target` until `cut()`: then every open connection is
    closed and new ones are refused (the listening socket is gone) until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._start()

    def _start(self) -> None:
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if self._cut:  # accepted while being cut: refused
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def cut(self) -> None:
        self._cut = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._server.close()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        self._cut = False
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._start()

    def close(self) -> None:
        if not self._cut:
            self.cut()


# PostgreSQL's CommandComplete for a COMMIT: 'C', its length (4 + 7), the tag
_COMMITTED = b"C\x00\x00\x00\x0bCOMMIT\x00"


class CommitAnswerLost(Cuttable):
    """A Cuttable that, once `lose_next_commit_answer()` was called, drops the server's answer
    to the next COMMIT and closes that connection: the transaction is committed on the server
    and its client sees the connection drop, as when a connection dies just after a commit."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._armed = threading.Event()
        self.lost = threading.Event()
        super().__init__(target)

    def lose_next_commit_answer(self) -> None:
        self.lost.clear()
        self._armed.set()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if _COMMITTED in data and self._armed.is_set():
                    self._armed.clear()
                    self.lost.set()
                    break  # committed on the server; its client never hears it
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
