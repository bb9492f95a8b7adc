"""Milestone emitter for bench/milestone-latency.ts, in its own process like a real trainer.

    python3 bench/python/milestone_emitter.py URL TOKEN RUN COUNT INTERVAL_MS

Connects a StreamingHook (default settings, so the 50 ms linger is in force for ordinary
events), prints "ready" once the server acknowledged the hello, and waits for a line on
stdin. Then, every INTERVAL_MS, it emits one PPO metrics event (the background a trainer
produces) and one milestone with step = i, noting the wall-clock time (ms, CLOCK_REALTIME)
just before each milestone's emit. At the end it prints one JSON object:
{"emitted": {step: ms}, "stats": hook.stats()}.
"""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
from ringcast_client import StreamingHook  # noqa: E402


def main():
    url, token, run, count, interval_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    hook = StreamingHook(url, token=token, run=run)
    deadline = time.time() + 10
    while hook.stats()["acks"] < 1 and time.time() < deadline:
        time.sleep(0.01)
    print("ready", flush=True)
    sys.stdin.readline()
    emitted = {}
    period = interval_ms / 1000.0
    start = time.perf_counter()
    for i in range(1, count + 1):
        hook.emit_ppo_metrics({"ppo/policy_loss": 0.5 / i, "ppo/kl_divergence_approx": 0.004, "ppo/entropy": 2.0}, i)
        emitted[i] = time.time_ns() / 1e6
        hook.emit_milestone("bench_milestone", message="milestone %d" % i, step=i)
        # Sleep to the next slot on a fixed grid, so a slow iteration does not shift the rest.
        delay = start + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    hook.flush(10)
    print(json.dumps({"emitted": emitted, "stats": hook.stats()}), flush=True)
    hook.close(timeout=2)


if __name__ == "__main__":
    main()
