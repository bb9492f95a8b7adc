/**
 * clients/python/ringcast_torch.py, the PyTorch IterableDataset over /experience.
 *
 * 1. With a stand-in `torch` module (tests/fixtures/torch-standin: from_numpy, a Tensor over a
 *    numpy array, torch.utils.data's IterableDataset and a get_worker_info the test sets), the
 *    adapter's own logic on known batches: the columns (states, actions, rewards, dones, masks
 *    unpacked from the bitsets), per-record mode, worker sharding (disjoint, complete), and that
 *    the consumer is closed when iteration ends, is abandoned or fails. Then the same stand-in
 *    against the real service with the demo's Keisei-sized experience.
 * 2. With real PyTorch (Debian's python3-torch under /usr/bin/python3; CI installs it), the
 *    dataset against the real service, alone and in a DataLoader with two worker processes.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runPython, type PythonResult } from './helpers/python.js';
import { INGEST_TOKEN, useDemoExperienceService, type Harness } from './helpers/service-harness.js';

const standin = path.join(repoRoot, 'tests', 'fixtures', 'torch-standin');

/** python3 with the stand-in torch first on the path. */
function withStandin(code: string, args: string[] = []): Promise<PythonResult> {
  const prelude = `import sys; sys.path.insert(0, ${JSON.stringify(standin)})\nimport torch; assert torch.STANDIN\n`;
  return runPython(['-c', prelude + code, ...args], { timeoutMs: 60_000 });
}

/** Debian's python3 (where python3-torch installs) with the client on PYTHONPATH. */
function debianPython(code: string, args: string[], timeoutMs = 90_000): Promise<PythonResult> {
  return runPython(['-c', code, ...args], { timeoutMs, python: '/usr/bin/python3' });
}

const lastJson = (r: PythonResult) => JSON.parse(r.stdout.trim().split('\n').pop()!);

const FAKE_STREAM = String.raw`
import json
import numpy as np
import torch
from torch.utils.data import set_worker_info
from ringcast_client import Experience, ExperienceBatch
from ringcast_torch import ExperienceDataset

MASK_LEN = 13  # not a multiple of 8: the last byte's high bits must be ignored
SHAPE = (2, 3)

def record(seq):
    bits = bytearray(2)
    for a in (seq % MASK_LEN, (seq * 5) % MASK_LEN):
        bits[a >> 3] |= 1 << (a & 7)
    bits[1] |= 0xE0  # bits 13..15: past mask_len
    return Experience(seq=seq, game_id="g%d" % (seq // 10), player_id="p", turn=seq % 10, action=seq, reward=float(seq) / 2,
                      done=seq % 10 == 9, state=np.arange(6, dtype=np.float32).reshape(SHAPE) + seq, state_shape=SHAPE,
                      legal_mask=bytes(bits), mask_len=MASK_LEN, timestamp=0)

class FakeConsumer(object):
    """Five batches of 8 records (seq 100..139) and one empty batch; records close() and can fail."""
    instances = []
    def __init__(self, url, fail_after=None, **kw):
        self.url, self.kw, self.closed, self.fail_after = url, kw, False, fail_after
        FakeConsumer.instances.append(self)
    def __iter__(self):
        for b in range(5):
            if self.fail_after is not None and b == self.fail_after:
                raise ConnectionError("stream broke")
            recs = [record(100 + 8 * b + i) for i in range(8)]
            yield ExperienceBatch(recs, recs[0].seq, recs[-1].seq, 0, 0, 1.0)
            if b == 1:
                yield ExperienceBatch([], None, None, 0, 0, 1.0)
    def close(self):
        self.closed = True

out = {}
ds = ExperienceDataset("ws://x:1/experience", consumer_factory=FakeConsumer, token="t", min_turn=3)
batches = list(ds)
c = FakeConsumer.instances[-1]
out["args"] = [c.url, c.kw]
out["closed_after_end"] = c.closed
out["batches"] = len(batches)
states, actions, rewards, dones, masks = batches[0]
out["types"] = [type(t).__name__ for t in batches[0]]
out["shapes"] = [list(t.shape) for t in batches[0]]
out["dtypes"] = [str(t.dtype) for t in batches[0]]
out["states_ok"] = bool((states.numpy() == np.stack([record(100 + i).state for i in range(8)])).all())
out["actions"] = actions.numpy().tolist()
out["rewards_ok"] = rewards.numpy().tolist() == [float(100 + i) / 2 for i in range(8)]
out["dones"] = [int(d) for d in dones.numpy().tolist()]
want = [[a in ((s % MASK_LEN), (s * 5) % MASK_LEN) for a in range(MASK_LEN)] for s in range(100, 108)]
out["masks_ok"] = masks.numpy().tolist() == want

single = list(ExperienceDataset("ws://x:1/experience", per_record=True, consumer_factory=FakeConsumer))
out["per_record"] = [len(single), [list(t.shape) for t in single[0]], int(single[0][1].item())]

seen = []
for worker in (0, 1):
    set_worker_info(worker, 2)
    seen.append(sorted(a for batch in ExperienceDataset("ws://x:1/experience", consumer_factory=FakeConsumer) for a in batch[1].numpy().tolist()))
set_worker_info(None, None)
out["shards"] = seen

it = iter(ExperienceDataset("ws://x:1/experience", consumer_factory=FakeConsumer))
next(it)
abandoned = FakeConsumer.instances[-1]
out["open_while_iterating"] = not abandoned.closed
it.close()
out["closed_when_abandoned"] = abandoned.closed

try:
    list(ExperienceDataset("ws://x:1/experience", consumer_factory=FakeConsumer, fail_after=2))
    out["failure"] = None
except ConnectionError as e:
    out["failure"] = str(e)
out["closed_after_failure"] = FakeConsumer.instances[-1].closed

from ringcast_torch import batch_arrays
try:
    odd = record(1)
    odd.state_shape = (3, 2)
    batch_arrays([record(0), odd])
    out["mixed_shapes"] = None
except ValueError as e:
    out["mixed_shapes"] = str(e)
print(json.dumps(out))
`;

const LIVE = String.raw`
import json, sys
import torch
from ringcast_torch import ExperienceDataset
ds = ExperienceDataset(sys.argv[1], token=sys.argv[2], batch_size=8, min_turn=3, start="earliest")
it = iter(ds)
states, actions, rewards, dones, masks = next(it)
it.close()
n = states.shape[0]
print(json.dumps({"states": list(states.shape), "masks": list(masks.shape), "dtypes": [str(t.dtype) for t in (states, actions, rewards, dones, masks)],
                  "legal": all(bool(masks[i][int(actions[i].item())].item()) for i in range(n)), "standin": getattr(torch, "STANDIN", False)}))
`;

describe('ringcast_torch with a stand-in torch', () => {
  it('builds the columns, shards by worker, yields per record, and closes the consumer however iteration stops', async () => {
    const r = await withStandin(FAKE_STREAM);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r);
    expect(out.args).toEqual(['ws://x:1/experience', { token: 't', min_turn: 3 }]);
    expect(out.batches).toBe(5); // the empty batch yields nothing
    expect(out.closed_after_end).toBe(true);
    expect(out.types).toEqual(['Tensor', 'Tensor', 'Tensor', 'Tensor', 'Tensor']);
    expect(out.shapes).toEqual([[8, 2, 3], [8], [8], [8], [8, 13]]);
    expect(out.dtypes).toEqual(['float32', 'int64', 'float32', 'bool', 'bool']);
    expect(out.states_ok).toBe(true);
    expect(out.actions).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
    expect(out.rewards_ok).toBe(true);
    expect(out.dones).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(out.masks_ok).toBe(true);
    expect(out.per_record).toEqual([40, [[2, 3], [], [], [], [13]], 100]);
    const all = Array.from({ length: 40 }, (_, i) => 100 + i);
    expect(out.shards[0]).toEqual(all.filter((s) => s % 2 === 0));
    expect(out.shards[1]).toEqual(all.filter((s) => s % 2 === 1));
    expect(out.open_while_iterating).toBe(true);
    expect(out.closed_when_abandoned).toBe(true);
    expect(out.failure).toBe('stream broke');
    expect(out.closed_after_failure).toBe(true);
    expect(out.mixed_shapes).toMatch(/different state shapes/);
  }, 60_000);
});

describe('ringcast_torch against the service', () => {
  let h: Harness;
  let url: string;
  useDemoExperienceService((started, experienceUrl) => { h = started; url = experienceUrl; });

  it('stand-in torch: a batch of the demo experience as [8, 46, 9, 9] states and >= 13,527-action masks', async () => {
    const r = await withStandin(LIVE, [url, INGEST_TOKEN]);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r);
    expect(out.standin).toBe(true);
    expect(out.states).toEqual([8, 46, 9, 9]);
    expect(out.masks[0]).toBe(8);
    expect(out.masks[1]).toBeGreaterThanOrEqual(13_527);
    expect(out.dtypes).toEqual(['float32', 'int64', 'float32', 'bool', 'bool']);
    expect(out.legal).toBe(true);
  }, 60_000);

  // CI installs python3-torch (.ci/run); a machine without it checks what a user without torch gets.
  const realTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { timeout: 60_000 }).status === 0;
  if (!realTorch && !process.env.CI) {
    it('without PyTorch (no python3-torch here): importing ringcast_torch fails saying what it needs', async () => {
      const r = await debianPython('import ringcast_torch', []);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ringcast_torch needs PyTorch and numpy/);
    }, 60_000);
    return;
  }

  it('real PyTorch (Debian python3-torch): tensors from the stream, alone and through a DataLoader with two workers', async () => {
    const code = `${LIVE}
from torch.utils.data import DataLoader
loader = DataLoader(ExperienceDataset(sys.argv[1], token=sys.argv[2], batch_size=8, start="earliest"), batch_size=None, num_workers=2)
got = []
for states, actions, rewards, dones, masks in loader:
    got.append([type(states).__name__, list(states.shape), all(bool(masks[i, actions[i]]) for i in range(states.shape[0]))])
    if len(got) == 6:
        break
print(json.dumps({"torch": torch.__version__, "loader": got}))
`;
    const r = await debianPython(code, [url, INGEST_TOKEN]);
    expect(r.code, `${r.stderr}\n(needs Debian's python3-torch: apt-get install python3-torch)`).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const [live, loader] = [lines[0], lines[1]];
    expect(live.standin).toBe(false);
    expect(live.states).toEqual([8, 46, 9, 9]);
    expect(live.masks[1]).toBeGreaterThanOrEqual(13_527);
    expect(live.dtypes).toEqual(['torch.float32', 'torch.int64', 'torch.float32', 'torch.bool', 'torch.bool']);
    expect(live.legal).toBe(true);
    expect(loader.torch).toMatch(/^\d+\.\d+/);
    expect(loader.loader).toHaveLength(6);
    for (const [type, shape, legal] of loader.loader) {
      expect(type).toBe('Tensor');
      expect(shape[0]).toBeGreaterThan(0); // each worker keeps its half of a batch
      expect(shape[0]).toBeLessThanOrEqual(8);
      expect(shape.slice(1)).toEqual([46, 9, 9]);
      expect(legal).toBe(true);
    }
  }, 120_000);
});
