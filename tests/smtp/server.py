"""A real SMTP server for tests: aiosmtpd, storing every message in a maildir.

Usage: server.py MAILDIR. Prints the port it listens on (127.0.0.1), then serves until stdin closes.
"""
import socket
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    controller = Controller(Mailbox(sys.argv[1]), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
