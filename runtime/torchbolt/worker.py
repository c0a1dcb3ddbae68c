"""A pre-started run process for editors: `python -m torchbolt.worker`.

Importing torch, and the `torch._dynamo` import that torch's first optimizer triggers, take seconds. The
language server starts this worker ahead of time (trusted folders, and only after the user's first
explicit run there in the session, with that run's interpreter and environment) with the pipes a run
will have; it imports those libraries (never the user's code), prints a ready marker,
and waits for one JSON line on stdin: `{"argv": [...], "env": {...}}`. It then runs `torchbolt <argv>`
exactly as the command line would and exits with its status. One worker serves one run.
"""

from __future__ import annotations

import json
import os
import sys

#: Line printed on stdout once the heavy imports are done.
READY = "torchbolt-worker-ready"


def _warm_up() -> None:
    import torch

    import torchbolt.callbacks.event_stream  # noqa: F401
    import torchbolt.cli  # noqa: F401
    import torchbolt.trainer.trainer  # noqa: F401

    # The first optimizer imports torch._dynamo (torch's own lazy import): pay it now, not at the first step.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def main() -> int:
    """Warm up, wait for the run's command line, run it; returns the run's exit status."""
    from torchbolt.callbacks.event_stream import watch_lifeline

    watch_lifeline()  # the server that started us may die while we wait or run: end with it
    _warm_up()
    print(READY, flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the editor closed without using this worker
    try:
        request = json.loads(line)
        argv = [str(a) for a in request["argv"]]
        env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
    except (ValueError, KeyError, TypeError) as exc:
        print(f"torchbolt.worker: bad request ({exc}); expected {{\"argv\": [...], \"env\": {{...}}}}",
              file=sys.stderr)
        return 2
    os.environ.update(env)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a run has no stdin, as when started directly
    os.close(devnull)
    sys.argv = ["torchbolt", *argv]
    from torchbolt.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
