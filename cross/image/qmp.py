#!/usr/bin/env python3
"""Sends one QMP command to a running qemu and prints the reply.

The boot test powers the guest off through QMP (the ACPI/GPIO power button,
as a user pressing it) rather than killing qemu, so that a clean shutdown of
the box is part of what it proves.

    qmp.py SOCKET COMMAND [TIMEOUT_SECONDS]
"""
import json
import socket
import sys


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    path, command = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) == 4 else 10.0
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as e:
        print(f"qmp: cannot connect to {path}: {e}", file=sys.stderr)
        return 1
    stream = sock.makefile("rwb")

    def reply():
        # Skip asynchronous events; return the first return/error object.
        while True:
            line = stream.readline(1 << 20)
            if not line:
                raise ConnectionError("qemu closed the QMP socket")
            msg = json.loads(line)
            if "return" in msg or "error" in msg or "QMP" in msg:
                return msg

    def send(cmd):
        stream.write(json.dumps({"execute": cmd}).encode() + b"\n")
        stream.flush()
        return reply()

    try:
        greeting = reply()
        if "QMP" not in greeting:
            print(f"qmp: unexpected greeting {greeting}", file=sys.stderr)
            return 1
        for cmd in ("qmp_capabilities", command):
            msg = send(cmd)
            if "error" in msg:
                print(f"qmp: {cmd} failed: {msg['error']}", file=sys.stderr)
                return 1
        print(json.dumps(msg["return"]))
        return 0
    except (OSError, ValueError, ConnectionError) as e:
        print(f"qmp: {command} on {path}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
