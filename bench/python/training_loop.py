"""A CPU-bound, training-shaped loop for bench/training-impact.ts: how much does streaming cost?

    python3 bench/python/training_loop.py --mode with|without --seconds 3 --url tcp://127.0.0.1:8081 --token T

One run = warm-up, then `--seconds` of training steps. The data a trainer would hand to
the hook (PPO metrics, 9x256 SE weights, top-5 moves, a 9x9 heatmap) is produced in both
modes; only in `with` mode is a StreamingHook created and fed, 10 times a second per kind.
Prints one JSON object: steps/s, process CPU, emit-call latencies, the client's stats.

Loops: `numpy` (a 2-layer MLP forward/backward/SGD step on a 64x256 batch, BLAS held to one
thread) or `python` (the same shape of work in pure Python at a smaller size, holding the
GIL all the time: the worst case for a background sender thread).
"""

import argparse
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
from ringcast_client import StreamingHook  # noqa: E402

EMIT_PERIOD_S = 0.1  # 10 Hz per kind, like a trainer feeding a 10 Hz overlay


def numpy_step_factory(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 256), dtype=np.float32)
    y = rng.standard_normal((64, 64), dtype=np.float32)
    w1 = rng.standard_normal((256, 256), dtype=np.float32) * 0.05
    w2 = rng.standard_normal((256, 64), dtype=np.float32) * 0.05
    lr = np.float32(1e-4)

    def step():
        nonlocal w1, w2
        h = x @ w1
        a = np.maximum(h, 0)
        out = a @ w2
        err = out - y
        loss = float((err * err).mean())
        g2 = a.T @ err
        ga = (err @ w2.T) * (h > 0)
        g1 = x.T @ ga
        w1 -= lr * g1
        w2 -= lr * g2
        return loss

    def se_weights():
        return np.abs(w1[:9]).astype(np.float32)  # 9 blocks x 256 channels, float32

    def heatmap():
        return np.abs(y[:9, :9])

    return step, se_weights, heatmap


def python_step_factory(seed):
    rnd = random.Random(seed)
    n = 24
    x = [rnd.gauss(0, 1) for _ in range(n)]
    w = [[rnd.gauss(0, 0.1) for _ in range(n)] for _ in range(n)]
    target = [rnd.gauss(0, 1) for _ in range(n)]
    lr = 1e-3

    def step():
        h = [sum(wi * xi for wi, xi in zip(row, x)) for row in w]
        err = [hi - ti for hi, ti in zip(h, target)]
        loss = sum(e * e for e in err) / n
        for row, e in zip(w, err):
            g = lr * e
            for j in range(n):
                row[j] -= g * x[j]
        return loss

    def se_weights():
        return [[abs(w[b % n][c % n]) for c in range(256)] for b in range(9)]

    def heatmap():
        return [[abs(x[(r * 9 + c) % n]) for c in range(9)] for r in range(9)]

    return step, se_weights, heatmap


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(p / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("with", "without", "interleaved"), required=True)
    ap.add_argument("--blocks", type=int, default=16, help="interleaved: number of on/off blocks (ABBA order)")
    ap.add_argument("--loop", choices=("numpy", "python"), default="numpy")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--url", default="tcp://127.0.0.1:8081")
    ap.add_argument("--token", default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    step, se_weights, heatmap = (numpy_step_factory if args.loop == "numpy" else python_step_factory)(args.seed)
    hook = None
    if args.mode != "without":
        hook = StreamingHook(args.url, token=args.token, run="bench-training-impact")
        deadline = time.monotonic() + 3
        while hook.stats()["state"] != "connected" and time.monotonic() < deadline:
            time.sleep(0.01)
        if hook.stats()["state"] != "connected":
            print(json.dumps({"error": "could not connect to %s: %s" % (args.url, hook.stats())}))
            return 2

    emit_ns = {"metrics": [], "se_attention": [], "policy": [], "board_heatmap": []}
    moves = ["7g7f", "2g2f", "5i5h", "8h2b+", "1g1f"]
    perf = time.perf_counter
    pns = time.perf_counter_ns
    tns = time.thread_time_ns
    emit_cpu_ns = []

    def telemetry(global_step, loss):
        # What a trainer computes for its overlay whether or not anything is listening.
        metrics = {
            "ppo/policy_loss": loss,
            "ppo/value_loss": loss * 0.5,
            "ppo/entropy": 1.5,
            "ppo/kl_divergence_approx": 0.01,
            "ppo/clip_fraction": 0.1,
            "ppo/learning_rate": 3e-4,
            "gradient_norm": 0.7,
            "explained_variance": 0.9,
        }
        weights = se_weights()
        top5 = [(m, 0.5 / (i + 1)) for i, m in enumerate(moves)]
        grid = heatmap()
        if hook is None:
            return
        c = tns()
        t = pns()
        hook.emit_ppo_metrics(metrics, global_step)
        t1 = pns()
        hook.cache_attention_weights(weights, step=global_step)
        t2 = pns()
        hook.emit_predictions(top5, position="startpos", value=0.1, step=global_step)
        t3 = pns()
        hook.emit_board_heatmap(grid, step=global_step)
        t4 = pns()
        # CPU time of the four calls: the latency above minus time the OS ran something else.
        emit_cpu_ns.append((tns() - c) / 4)
        emit_ns["metrics"].append(t1 - t)
        emit_ns["se_attention"].append(t2 - t1)
        emit_ns["policy"].append(t3 - t2)
        emit_ns["board_heatmap"].append(t4 - t3)

    # Warm-up: caches, BLAS, the client's first frames.
    end = perf() + args.warmup
    while perf() < end:
        step()
    for v in emit_ns.values():
        v.clear()
    emit_cpu_ns.clear()

    if args.mode == "interleaved":
        return interleaved(args, step, telemetry, hook, emit_ns, emit_cpu_ns)

    steps = 0
    next_emit = perf()
    sender_cpu0 = hook.stats()["sender_cpu_s"] if hook is not None else 0.0
    cpu0 = time.process_time()
    t0 = perf()
    end = t0 + args.seconds
    now = t0
    while now < end:
        loss = step()
        steps += 1
        now = perf()
        if now >= next_emit:
            telemetry(steps, loss)
            next_emit += EMIT_PERIOD_S
    elapsed = perf() - t0
    cpu = time.process_time() - cpu0
    sender_cpu = hook.stats()["sender_cpu_s"] - sender_cpu0 if hook is not None else 0.0

    result = {
        "mode": args.mode,
        "loop": args.loop,
        "steps": steps,
        "elapsed_s": elapsed,
        "steps_per_s": steps / elapsed,
        "cpu_s": cpu,
        "steps_per_cpu_s": steps / cpu if cpu > 0 else float("nan"),
    }
    finish(result, hook, emit_ns, emit_cpu_ns, elapsed, sender_cpu)
    print(json.dumps(result))
    return 0


def interleaved(args, step, telemetry, hook, emit_ns, emit_cpu_ns):
    """One process, the hook attached throughout, emitting only in "on" blocks.

    Adjacent blocks see the same machine load, so on/off pairs cancel drift that
    separate processes cannot (other jobs, frequency changes). Order is ABBA
    (on,off | off,on | ...). The idle sender thread costs nothing in "off" blocks: it
    sleeps on a condition until an emit wakes it.
    """
    perf = time.perf_counter
    block_s = args.seconds / args.blocks
    blocks = []
    sender_cpu0 = hook.stats()["sender_cpu_s"]
    t_start = perf()
    for b in range(args.blocks):
        on = (b % 4) in (0, 3)
        steps = 0
        cpu0 = time.process_time()
        t0 = perf()
        end = t0 + block_s
        next_emit = t0
        now = t0
        while now < end:
            loss = step()
            steps += 1
            now = perf()
            if on and now >= next_emit:
                telemetry(steps, loss)
                next_emit += EMIT_PERIOD_S
        elapsed = perf() - t0
        blocks.append({"on": on, "steps": steps, "elapsed_s": elapsed, "cpu_s": time.process_time() - cpu0})
    elapsed = perf() - t_start
    result = {"mode": "interleaved", "loop": args.loop, "blocks": blocks, "elapsed_s": elapsed}
    finish(result, hook, emit_ns, emit_cpu_ns, sum(b["elapsed_s"] for b in blocks if b["on"]), hook.stats()["sender_cpu_s"] - sender_cpu0)
    print(json.dumps(result))
    return 0


def finish(result, hook, emit_ns, emit_cpu_ns, elapsed, sender_cpu):
    if hook is not None:
        all_ns = sorted(x for v in emit_ns.values() for x in v)
        result["emits"] = len(all_ns)
        result["emit_total_s"] = sum(all_ns) / 1e9
        # The client's whole CPU bill in the timed window: emit calls + the sender thread.
        result["sender_cpu_s"] = sender_cpu
        result["client_cpu_pct"] = 100 * (result["emit_total_s"] + sender_cpu) / elapsed
        result["emit_p50_us"] = percentile(all_ns, 50) / 1000
        result["emit_p99_us"] = percentile(all_ns, 99) / 1000
        cpu_sorted = sorted(emit_cpu_ns)
        result["emit_cpu_p50_us"] = percentile(cpu_sorted, 50) / 1000
        result["emit_cpu_p99_us"] = percentile(cpu_sorted, 99) / 1000
        result["emit_max_us"] = all_ns[-1] / 1000 if all_ns else float("nan")
        result["emit_p99_us_by_kind"] = {k: percentile(sorted(v), 99) / 1000 for k, v in emit_ns.items()}
        hook.flush(2)
        stats = hook.stats()
        hook.close(1)
        result["client"] = {k: stats[k] for k in ("sent", "sent_bytes", "dropped", "invalid", "lost", "server_errors", "last_server_error", "state", "sender_cpu_s")}


if __name__ == "__main__":
    sys.exit(main())
