"""A TCP forwarder on loopback that a test can switch into a blackhole: it stops relaying bytes on
every connection, old and new, but keeps the sockets open, as a dead NAT or a failed-over host does
(the peers see no reset and no close, only silence); switched back, it relays again.  Severed, it
drops every connection with a reset, as a crashed middlebox does: the bytes it held are lost."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading


class Forwarder:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._relaying = threading.Event()
        self._relaying.set()
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="forwarder-accept", daemon=True).start()

    def blackhole(self) -> None:
        """Stop relaying on every connection, keeping each open."""
        self._relaying.clear()

    def restore(self) -> None:
        """Relay again: what waited in the buffers goes through, as after a network comes back."""
        self._relaying.set()

    def sever(self) -> None:
        """Reset every connection, those waiting for a blackhole to end too: what they held is lost."""
        with self._lock:
            severed, self._sockets = self._sockets, []
        for sock in severed:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, no FIN
                sock.close()

    def close(self) -> None:
        self._stopped.set()
        self._relaying.set()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._wait_relaying()  # a connection made during a blackhole is accepted, and then hears nothing
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            if client not in self._sockets:  # severed while it waited
                upstream.close()
                return
            self._sockets.append(upstream)
        for sock in (client, upstream):  # relay each chunk as it comes: Nagle's delay is no part of the network
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _wait_relaying(self) -> None:
        while not self._stopped.is_set() and not self._relaying.wait(0.05):
            pass

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._stopped.is_set():
                self._wait_relaying()
                readable, _, _ = select.select([source], [], [], 0.05)
                if not readable or not self._relaying.is_set():
                    continue  # blackholed: the bytes stay unread in the kernel's buffers
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
        except (OSError, ValueError):  # a socket reset, or closed by close() (select then sees fd -1)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_RDWR)
