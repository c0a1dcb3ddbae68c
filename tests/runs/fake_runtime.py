"""A stand-in for `python -m torchbolt fit ... --events fd:N` that writes synthetic events (no torch).

Used as the run interpreter in tests of the server side and in bench/run_bench.py:
`fake_runtime.py -m torchbolt fit TARGET ... --events fd:N`. Behaviour from the environment:
FAKE_STEPS (progress events, default 50), FAKE_RATE (events per second, 0 = as fast as possible),
FAKE_MODE (success | fail | hang), FAKE_EPOCHS (default 2). Like the runtime, it writes the LR-find
summary (`lr-find`: suggested lr FAKE_LR, default 0.0123, or none when FAKE_LR is "none") and a profiler
summary (with `--trainer.profiler`) to the files TORCHBOLT_LR_FIND_SUMMARY / TORCHBOLT_PROFILER_SUMMARY name.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "runtime"))
from torchbolt import events as ev  # noqa: E402


def main(argv: list[str]) -> int:
    target = argv[argv.index("--events") + 1]
    fd = int(target[3:])
    run_id = os.environ.get("TORCHBOLT_RUN_ID", "fake")
    steps = int(os.environ.get("FAKE_STEPS", "50"))
    rate = float(os.environ.get("FAKE_RATE", "0"))
    epochs = int(os.environ.get("FAKE_EPOCHS", "2"))
    mode = os.environ.get("FAKE_MODE", "success")
    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *a: stop.__setitem__("now", True))
    out = os.fdopen(fd, "wb", buffering=1 << 16)

    def emit(event: ev._Event) -> None:
        out.write(ev.dump_event(event))

    command = argv[argv.index("-m") + 2]
    # lr-find tunes inside a fit: the runtime reports a fit
    emit(ev.RunStarted(run_id=run_id, fn="fit" if command == "lr-find" else command,
                       target=argv[argv.index("-m") + 3],
                       max_epochs=epochs, max_steps=-1, num_training_batches=steps, log_dir=None, pid=os.getpid(),
                       torchbolt_version="fake"))
    print("fake runtime started", flush=True)
    start = time.perf_counter()
    sent = 0
    step = 0
    for epoch in range(epochs):
        emit(ev.EpochStarted(run_id=run_id, epoch=epoch, total=steps))
        for batch in range(steps):
            step += 1
            emit(ev.Progress(run_id=run_id, stage="train", epoch=epoch, batch=batch + 1, total=steps, global_step=step,
                             metrics={"loss": 1.0 / step}))
            sent += 1
            if rate:
                ahead = sent / rate - (time.perf_counter() - start)
                if ahead > 0.002:
                    out.flush()
                    time.sleep(ahead)
            if stop["now"]:
                emit(ev.Finished(run_id=run_id, status="interrupted", epochs=epoch, global_step=step,
                                 duration_s=time.perf_counter() - start))
                out.flush()
                return 130
            if mode == "hang" and batch == steps // 2:
                out.flush()
                while True:  # ignores SIGINT from now on: a run that does not stop must get killed
                    time.sleep(0.1)
        emit(ev.Metrics(run_id=run_id, epoch=epoch, step=step, scope="epoch", metrics={"loss": 1.0 / step}))
        emit(ev.ValidationEnd(run_id=run_id, epoch=epoch, global_step=step, metrics={"val_loss": 0.5 / (epoch + 1)}))
    out.flush()
    if mode == "fail":
        raise ZeroDivisionError("fake failure")
    _write_summaries(argv)
    emit(ev.Finished(run_id=run_id, status="success", epochs=epochs, global_step=step,
                     duration_s=time.perf_counter() - start, callback_metrics={"val_loss": 0.5 / epochs}))
    out.flush()
    return 0


def _write_summaries(argv: list[str]) -> None:
    """The JSON files the runtime's Tuner and profilers write (docs/profiling-and-tuning.md)."""
    lr_file, prof_file = os.environ.get("TORCHBOLT_LR_FIND_SUMMARY"), os.environ.get("TORCHBOLT_PROFILER_SUMMARY")
    if lr_file and argv[argv.index("-m") + 2] == "lr-find":
        raw = os.environ.get("FAKE_LR", "0.0123")
        lrs = [1e-8 * 10 ** (i / 4) for i in range(30)]
        with open(lr_file, "w") as f:
            json.dump({"suggested_lr": None if raw == "none" else float(raw), "mode": "exponential", "lr": lrs,
                       "loss": [1.0 / (i + 1) for i in range(30)]}, f)
    if prof_file and "--trainer.profiler" in argv:
        actions = [{"name": f"action_{i}", "mean_s": 0.01 * i, "count": 2, "total_s": 0.02 * i, "percent": 1.0}
                   for i in range(1, 8)]
        with open(prof_file, "w") as f:
            json.dump({"profiler": "SimpleProfiler", "stage": "fit", "report_file": None, "total_s": 1.5,
                       "actions": actions}, f)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
