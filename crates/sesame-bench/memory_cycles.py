#!/usr/bin/env python3
"""Resident memory of `sesame serve` over open/close cycles of many HTTP connections.

docs/security.md, "Memory under many connections". Each cycle opens CONNECTIONS keep-alive
connections to 127.0.0.1, sends `GET /healthz` on each and reads the answer, holds them all,
then closes them all; the server's VmRSS is read when all are open and again once the server
has closed its side (its descriptor count is back to where it was).

    cargo build --release -p sesame-cli
    python3 crates/sesame-bench/memory_cycles.py [--cycles 10] [--connections 2000]

Extra environment for the server (an allocator setting, say) passes through, e.g.
`MALLOC_ARENA_MAX=1 python3 crates/sesame-bench/memory_cycles.py`.

`--malloc-trim` (needs gdb and ptrace rights): after the last cycle, attaches gdb to the
server, prints glibc's `malloc_stats()` (bytes the allocator holds from the system against
bytes in use) and calls `malloc_trim(0)`, then reads VmRSS again. Resident memory that
`malloc_trim` gives back was freed memory the allocator kept, not a leak.
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_until(check, limit_s, what):
    """Polls `check` every 20 ms until it holds; fails after `limit_s` seconds."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_many(port, n):
    socks = []
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        socks.append(s)
    for s in socks:
        head = s.recv(4096)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer: {head[:40]!r}")
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/sesame"))
    ap.add_argument("--malloc-trim", action="store_true")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ)
        env.update(
            SESAME_LISTEN=f"127.0.0.1:{port}",
            SESAME_DATA_DIR=data,
            SESAME_HTTP_MAX_CONNECTIONS_PER_ADDRESS="0",
            SESAME_HTTP_MAX_CONNECTIONS="1000000",
            RUST_LOG="warn",
        )
        server = subprocess.Popen([args.bin, "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            wait_until(lambda: probe(port), 30, "the server to listen")
            base_fds = fd_count(server.pid)
            print(f"start: {rss_mb(server.pid):.1f} MB", flush=True)
            for cycle in range(1, args.cycles + 1):
                socks = open_many(port, args.connections)
                held = rss_mb(server.pid)
                for s in socks:
                    s.close()
                wait_until(lambda: fd_count(server.pid) <= base_fds, 60, "the server to close")
                print(
                    f"cycle {cycle}: {held:.1f} MB with {args.connections} open, "
                    f"{rss_mb(server.pid):.1f} MB after closing",
                    flush=True,
                )
            if args.malloc_trim:
                malloc_trim(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


def malloc_trim(pid):
    """glibc's own account of the heap, then its freed memory handed back to the system."""
    subprocess.run(
        ["gdb", "-p", str(pid), "-batch", "-ex", "call (void) malloc_stats()",
         "-ex", "call (int) malloc_trim(0)"],
        check=True, stdout=subprocess.DEVNULL,
    )
    print(f"after malloc_trim(0): {rss_mb(pid):.1f} MB", flush=True)


def probe(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
