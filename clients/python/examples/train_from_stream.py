#!/usr/bin/env python3
"""Train a small policy from ringcast's live experience stream and print its loss going down.

The policy is a softmax over the legal actions of each record's mask (Keisei gen-1 action
space), linear in a few features of (state, action) read from the 46x9x9 input planes: which
own piece moves, which opponent piece (if any) stands on the destination, promotion, drop,
how far forward and how central the destination is. It is trained by SGD on the cross-entropy
of the action that was played (behaviour cloning of the self-play policy). Small on purpose:
the point is a learner fed by the stream, not the model.

numpy is used when installed; without it the same model runs in pure Python (slower, same maths).

    python3 clients/python/examples/train_from_stream.py --url ws://127.0.0.1:8080/experience \
        --token "$RINGCAST_INGEST_TOKEN" --seconds 30
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ringcast_client import ExperienceConsumer  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None

BOARD_ACTIONS = 81 * 80 * 2  # then 81 * 7 drops (keisei-actions.ts)
# Features: 14 own piece types moved, 14 opponent piece types captured, promote, drop, advance, centre.
N_FEATURES = 14 + 14 + 4


def decode_action(a):
    """(from square or -1 for a drop, to square, promote) in absolute board coordinates."""
    if a >= BOARD_ACTIONS:
        return -1, (a - BOARD_ACTIONS) // 7, 0
    pair, promote = a >> 1, a & 1
    frm, rest = pair // 80, pair % 80
    return frm, (rest if rest < frm else rest + 1), promote


def legal_actions(rec):
    out = []
    for byte_i, byte in enumerate(rec.legal_mask):
        while byte:
            low = byte & -byte
            a = byte_i * 8 + low.bit_length() - 1
            if a < rec.mask_len:
                out.append(a)
            byte ^= low
    return out


def action_features(flat, sente, a):
    """Features of action a in a flat 46*81 state (planes are seen from the side to move)."""
    frm, to, promote = decode_action(a)
    view = (lambda sq: sq) if sente else (lambda sq: 80 - sq)
    t = view(to)
    x = [0.0] * N_FEATURES
    if frm >= 0:
        f = view(frm)
        for p in range(14):
            if flat[p * 81 + f]:
                x[p] = 1.0
                break
        x[30] = ((f // 9) - (t // 9)) / 8.0  # rows toward the opponent (own side at the bottom)
    else:
        x[29] = 1.0
    for p in range(14):
        if flat[(14 + p) * 81 + t]:
            x[14 + p] = 1.0
            break
    x[28] = float(promote)
    x[31] = abs((t % 9) - 4) / 4.0
    return x


class Policy(object):
    def __init__(self, lr):
        self.lr = lr
        self.w = np.zeros(N_FEATURES) if np is not None else [0.0] * N_FEATURES

    def step(self, rec):
        """One SGD step on one record; returns its loss before the step (None if unusable)."""
        legal = legal_actions(rec)
        if not legal or rec.action not in legal:
            return None
        flat = rec.state.reshape(-1) if np is not None else rec.state
        sente = flat[42 * 81] > 0.5
        rows = [action_features(flat, sente, a) for a in legal]
        target = legal.index(rec.action)
        if np is not None:
            x = np.asarray(rows)
            logits = x @ self.w
            p = np.exp(logits - logits.max())
            p /= p.sum()
            loss = -math.log(max(p[target], 1e-12))
            p[target] -= 1.0
            self.w -= self.lr * (x.T @ p)
            return loss
        logits = [sum(wi * xi for wi, xi in zip(self.w, row)) for row in rows]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        p = [e / total for e in exps]
        loss = -math.log(max(p[target], 1e-12))
        p[target] -= 1.0
        for j in range(N_FEATURES):
            self.w[j] -= self.lr * sum(p[i] * rows[i][j] for i in range(len(rows)))
        return loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8080/experience")
    ap.add_argument("--token", default=os.environ.get("RINGCAST_INGEST_TOKEN"))
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--report-every", type=int, default=50, help="records per printed loss line")
    ap.add_argument("--start", default="earliest", help="live, earliest or a sequence number")
    args = ap.parse_args(argv)
    start = int(args.start) if args.start.isdigit() else args.start

    consumer = ExperienceConsumer(args.url, token=args.token, batch_size=args.batch_size, start=start)
    policy = None
    window, windows, seen = [], [], 0
    deadline = time.monotonic() + args.seconds
    print("backend %s" % ("numpy" if np is not None else "pure-python"), flush=True)
    try:
        for batch in consumer:
            for rec in batch.records:
                if policy is None:
                    policy = Policy(args.lr)
                loss = policy.step(rec)
                if loss is None:
                    continue
                seen += 1
                window.append(loss)
                if len(window) == args.report_every:
                    mean = sum(window) / len(window)
                    windows.append(mean)
                    print("records %d loss %.4f" % (seen, mean), flush=True)
                    window = []
            if time.monotonic() > deadline:
                break
    finally:
        consumer.close()
    if len(windows) >= 2:
        third = max(1, len(windows) // 3)
        first, last = sum(windows[:third]) / third, sum(windows[-third:]) / third
        print("loss first %.4f last %.4f (%d records)" % (first, last, seen), flush=True)
    else:
        print("too few records for a trend (%d)" % seen, flush=True)


if __name__ == "__main__":
    main()
