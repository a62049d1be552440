#!/usr/bin/env python3
"""TLS clients for the proxy benchmark's tls mode (bench/proxy/run.sh).

  handshakes HOST PORT RATE COUNT
      COUNT full TLS handshakes (a fresh connection each, no session
      resumption), paced at RATE per second, each closed after its handshake
      with close_notify. Prints "ok N failed M elapsed S".
  idle HOST PORT COUNT
      opens COUNT TLS connections (full handshakes, a few at a time), prints
      "ready N" once they are all up, then holds them until its standard input
      closes, and closes them with close_notify.

The server's certificate is not verified: the client's cost does not count
here, only what the server spends. TLS 1.2 or later, as the proxies require.
Bounded: COUNT connections, each with a 10 s timeout.
"""
import resource
import socket
import ssl
import sys
import time


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # A fresh handshake every time: no session tickets or IDs to resume.
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def connect(ctx, host, port):
    raw = socket.create_connection((host, port), timeout=10)
    try:
        return ctx.wrap_socket(raw, server_hostname=None)
    except Exception:
        raw.close()
        raise


def close(s):
    try:
        s.unwrap()  # close_notify, as a well-behaved client sends
    except Exception:
        pass
    s.close()


def handshakes(host, port, rate, count):
    ctx = context()
    ok = failed = 0
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            close(connect(ctx, host, port))
            ok += 1
        except Exception as e:
            failed += 1
            if failed <= 3:
                print("handshake failed: %s" % e, file=sys.stderr)
    print("ok %d failed %d elapsed %.3f" % (ok, failed, time.monotonic() - start), flush=True)
    return 0 if failed == 0 else 1


def idle(host, port, count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    ctx = context()
    conns = []
    failed = 0
    for _ in range(count):
        try:
            conns.append(connect(ctx, host, port))
        except Exception as e:
            failed += 1
            if failed <= 3:
                print("connection failed: %s" % e, file=sys.stderr)
    print("ready %d failed %d" % (len(conns), failed), flush=True)
    sys.stdin.read()  # held until the benchmark closes our standard input
    for s in conns:
        close(s)
    return 0 if failed == 0 else 1


def main(argv):
    if len(argv) == 6 and argv[1] == "handshakes":
        return handshakes(argv[2], int(argv[3]), float(argv[4]), int(argv[5]))
    if len(argv) == 5 and argv[1] == "idle":
        return idle(argv[2], int(argv[3]), int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
