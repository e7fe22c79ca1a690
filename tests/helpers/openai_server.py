"""A scripted OpenAI-compatible server on 127.0.0.1 (real sockets, real HTTP)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _default_reply(body: dict) -> str:
    """Answer with the first label the prompt's last line offers ('Reply: YES or NO' -> YES)."""
    last = body["messages"][-1]["content"].strip().splitlines()[-1]
    for word in last.replace(",", " ").split():
        if word.isupper() or word.isdigit():
            return word
    return "?"


class ScriptedServer:
    """Each request pops the next action from `script` (default 'ok').

    Actions: ('ok', text|None) | ('429', retry_after) | ('500',) | ('401',) | ('reset',) |
    ('sleep', seconds) | ('malformed',) | ('truncated',) | ('empty',).
    `reply(body) -> str` answers 'ok' requests whose text is None.
    """

    def __init__(self):
        self.script: list[tuple] = []
        self.reply = _default_reply
        self.requests: list[dict] = []  # {t, headers, body, action}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold_s = 0.0  # every request sleeps this long (to observe concurrency)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                with server.lock:
                    action = server.script.pop(0) if server.script else ("ok", None)
                    server.requests.append(
                        {"t": time.monotonic(), "headers": dict(self.headers), "body": body, "action": action[0]}
                    )
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.hold_s:
                        time.sleep(server.hold_s)
                    self._act(action, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, code, payload: bytes, headers=None, length=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

            def _completion(self, text):
                return json.dumps(
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ]
                    }
                ).encode()

            def _act(self, action, body):
                kind = action[0]
                if kind == "ok":
                    text = action[1] if len(action) > 1 and action[1] is not None else server.reply(body)
                    self._send(200, self._completion(text))
                elif kind == "429":
                    self._send(429, b'{"error":"rate"}', {"Retry-After": str(action[1])})
                elif kind in ("500", "401"):
                    self._send(int(kind), b'{"error":"boom"}')
                elif kind == "reset":
                    # SO_LINGER 0 makes close() send RST: the client sees a reset connection
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                elif kind == "sleep":
                    time.sleep(action[1])
                    try:
                        self._send(200, self._completion(server.reply(body)))
                    except OSError:
                        pass
                elif kind == "malformed":
                    self._send(200, b'{"choices": [ {"message": nope}')
                elif kind == "truncated":
                    full = self._completion("YES")
                    self._send(200, full[: len(full) // 2], length=len(full))
                    self.close_connection = True
                elif kind == "empty":
                    self._send(200, self._completion(""))
                else:  # pragma: no cover - a typo in a test script
                    raise ValueError(kind)

            def finish(self):
                try:
                    super().finish()
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def actions(self) -> list[str]:
        return [r["action"] for r in self.requests]
