"""Command line: `torchbolt-lsp` / `python -m torchbolt_lsp` (stdio by default, `--tcp HOST:PORT`)."""

from __future__ import annotations

import argparse
import logging
import sys


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:2087), got {value!r}")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    """Start the language server; returns the exit status."""
    parser = argparse.ArgumentParser(prog="torchbolt-lsp", description="The torchbolt language server.")
    # vscode-languageclient and other clients append --stdio when they launch a server over pipes.
    parser.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    parser.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of the server's stderr log (default: WARNING)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    from . import __version__

    if args.version:
        print(f"torchbolt-lsp {__version__}")
        return 0
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .server import create_server

    server = create_server()
    if args.tcp:
        server.start_tcp(*args.tcp)
    else:
        server.start_io()
    _exit_now(server.exit_code)  # never returns
    return server.exit_code


def _exit_now(code: int) -> None:
    """End the process once serving is over, whatever still runs.

    The client waits for the server to exit after `exit` (often with our stdin still open). A normal
    interpreter exit joins every non-daemon thread and process-pool manager; one blocked reading stdin or
    waiting on a busy lint worker would hang the editor's shutdown for good. The cleanup that matters
    (runs and TensorBoards stopped, records saved) is in atexit handlers, run here first.
    """
    import atexit
    import multiprocessing
    import os

    # multiprocessing's own atexit handler joins the processes it started (the lint pool's worker); one that
    # has not taken the pool's shutdown yet would make that join, and so the exit, wait for good.
    for child in multiprocessing.active_children():
        child.kill()
        child.join(1.0)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
