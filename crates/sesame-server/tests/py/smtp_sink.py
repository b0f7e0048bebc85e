#!/usr/bin/env python3
"""A real SMTP server on loopback for the email tests (tests/email.rs).

    python3 smtp_sink.py OUT_DIR

Starts an aiosmtpd Controller on 127.0.0.1 on a free port, prints that port as the first
line of stdout, and writes every message it receives, as the raw RFC 5322 bytes the client
sent, to OUT_DIR/<n>.eml (written to a temporary name, then renamed, so a reader never sees
half a message). Runs until stdin is closed (the test process ended) or it is killed.

No TLS, no authentication: the server under test talks to it with smtp_security = "none".
"""

import os
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        tmp = os.path.join(self.out_dir, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.out_dir, f"{n:04}.eml"))
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: smtp_sink.py OUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    handler = Sink(out_dir)
    # The Controller needs a fixed port; a port just seen free may be taken meanwhile, so try
    # a few.
    last = None
    for _ in range(10):
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        try:
            controller.start()
            break
        except Exception as e:  # noqa: BLE001 - any failure: another port
            last = e
    else:
        sys.exit(f"smtp_sink: could not start: {last}")
    print(port, flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
