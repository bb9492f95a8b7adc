/**
 * The Python ExperienceConsumer (clients/python/ringcast_client.py) and the example trainer
 * (clients/python/examples/train_from_stream.py) against the real service with the demo
 * trainer emitting Keisei-sized experience. Each runs with numpy and with numpy hidden
 * (`sys.modules["numpy"] = None`, as on a machine without it), since the client must work
 * with the standard library alone.
 */
import path from 'node:path';
import { pythonClientDir as clientDir, runPython, type PythonResult } from './helpers/python.js';
import { describe, expect, it } from 'vitest';
import { INGEST_TOKEN, useDemoExperienceService, type Harness } from './helpers/service-harness.js';


let h: Harness;
let url: string;
useDemoExperienceService((started, experienceUrl) => { h = started; url = experienceUrl; });

function python(code: string, args: string[], noNumpy: boolean, timeoutMs = 60_000): Promise<PythonResult> {
  const prelude = noNumpy ? 'import sys; sys.modules["numpy"] = None\n' : '';
  return runPython(['-c', prelude + code, ...args], { timeoutMs });
}

const CONTRACT = String.raw`
import json, socket, sys
from ringcast_client import ExperienceConsumer
url, token = sys.argv[1], sys.argv[2]
out = {}

def size(state):
    return int(state.size) if hasattr(state, "size") else len(state)

c = ExperienceConsumer(url, token=token, games=None, players=None, min_turn=4, max_turn=None, reward_min=None,
                       reward_max=None, terminal_only=False, sample_rate=1.0, batch_size=8, start="earliest")
batches = [next(c) for _ in range(3)]
recs = [r for b in batches for r in b.records]
out["state_type"] = type(recs[0].state).__name__
out["state_sizes"] = sorted(set(size(r.state) for r in recs))
out["mask_bits"] = min(len(r.legal_mask) * 8 for r in recs)
out["mask_len"] = min(r.mask_len for r in recs)
out["min_turn"] = min(r.turn for r in recs)
out["played_legal"] = all(r.is_legal(r.action) for r in recs)
out["meta"] = all(b.seq_first == b.records[0].seq and b.seq_last == b.records[-1].seq and b.dropped == 0 and b.server_time > 0 for b in batches)
reply = c.configure(terminal_only=True)
out["configured"] = reply["filters"]["terminal_only"]
after = []
while len(after) < 3:
    after += [r for r in next(c).records if r.seq >= reply["cursor"]]
out["terminal"] = all(r.done for r in after)
stats = c.stats()
out["stats_keys"] = sorted(stats.keys())
out["stats_delivered"] = stats["delivered"]
errors = {}
try:
    c.configure(sample_rate=5)
except ValueError as e:
    errors["configure"] = str(e)
c.close()

# Resume: drop the connection under the consumer; it reconnects and continues after seq_last.
# Batches already read into the local queue keep coming first, so read on until well past
# where the old connection stopped.
import time
r = ExperienceConsumer(url, token=token, batch_size=4, start="earliest")
seqs = []
for i in range(3):
    seqs += [x.seq for x in next(r).records]
r._conn.sock.shutdown(socket.SHUT_RDWR)
t0 = time.monotonic()
while r._counts["reconnects"] < 1 and time.monotonic() - t0 < 20:
    time.sleep(0.01)
mark = r._next_seq
while not seqs or seqs[-1] < mark + 20:
    seqs += [x.seq for x in next(r).records]
out["duplicates_skipped"] = r._counts["duplicates_skipped"]
out["resume_contiguous"] = all(b - a == 1 for a, b in zip(seqs, seqs[1:]))
out["reconnects"] = r.stats()["client"]["reconnects"]
r.close()

for field, kwargs in [("min_turn", {"min_turn": "x"}), ("sample_rate", {"sample_rate": 2}), ("batch_size", {"batch_size": 0}),
                      ("max_turn", {"min_turn": 9, "max_turn": 3}), ("games", {"games": ["a" * 300]}), ("reward_min", {"reward_min": "nan"})]:
    try:
        ExperienceConsumer(url, token=token, **kwargs)
        errors[field] = None
    except ValueError as e:
        errors[field] = str(e)
out["errors"] = errors
print(json.dumps(out))
`;

describe('Python ExperienceConsumer against the service with the demo running', () => {
  for (const noNumpy of [false, true]) {
    it(`meets the contract ${noNumpy ? 'without numpy' : 'with numpy'}: Keisei-sized batches, min_turn, live configure, stats, resume, field-named errors`, async () => {
      const r = await python(CONTRACT, [url, INGEST_TOKEN], noNumpy);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.state_type).toBe(noNumpy ? 'array' : 'ndarray');
      expect(out.state_sizes).toEqual([3726]);
      expect(out.mask_bits).toBeGreaterThanOrEqual(13_527);
      expect(out.mask_len).toBeGreaterThanOrEqual(13_527);
      expect(out.min_turn).toBeGreaterThanOrEqual(4);
      expect(out.played_legal).toBe(true);
      expect(out.meta).toBe(true);
      expect(out.configured).toBe(true);
      expect(out.terminal).toBe(true);
      expect(out.stats_keys).toEqual(expect.arrayContaining(['delivered', 'filtered', 'dropped', 'lag', 'bytes', 'window', 'filters', 'client']));
      expect(out.stats_delivered).toBeGreaterThan(0);
      expect(out.resume_contiguous).toBe(true);
      expect(out.reconnects).toBeGreaterThanOrEqual(1);
      expect(out.duplicates_skipped).toBe(0); // the server resumed exactly; the client's guard had nothing to do
      for (const field of ['min_turn', 'sample_rate', 'batch_size', 'max_turn', 'games', 'reward_min']) {
        expect(out.errors[field], field).toMatch(new RegExp(`^${field}: `));
      }
      expect(out.errors.configure).toMatch(/^sample_rate: /);
    }, 90_000);
  }

  it('ringcast_torch: an IterableDataset of tensor batches with torch, a clear ImportError without it', async () => {
    // torch is not a test-machine requirement: where it is installed the dataset is driven
    // against the service; where it is not, the module must say what is missing.
    const code = String.raw`
import json, sys
try:
    import torch
except ImportError:
    torch = None
if torch is None:
    try:
        import ringcast_torch
        print(json.dumps({"torch": False, "imported": True}))
    except ImportError as e:
        print(json.dumps({"torch": False, "error": str(e)}))
else:
    from ringcast_torch import ExperienceDataset
    ds = ExperienceDataset(sys.argv[1], token=sys.argv[2], batch_size=8, min_turn=3, start="earliest")
    states, actions, rewards, dones, masks = next(iter(ds))
    print(json.dumps({"torch": True, "states": list(states.shape), "masks": list(masks.shape), "legal": bool(masks[0, actions[0]])}))
`;
    const r = await python(code, [url, INGEST_TOKEN], false);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    if (out.torch) {
      expect(out.states).toEqual([8, 46, 9, 9]);
      expect(out.masks[1]).toBeGreaterThanOrEqual(13_527);
      expect(out.legal).toBe(true);
    } else {
      expect(out.error).toMatch(/ringcast_torch needs PyTorch/);
    }
  }, 60_000);

  for (const noNumpy of [false, true]) {
    it(`train_from_stream.py learns from the stream ${noNumpy ? 'in pure Python' : 'with numpy'}: its loss goes down`, async () => {
      const runExample = `import runpy, sys; sys.argv = ["train_from_stream.py"] + sys.argv[1:]; runpy.run_path(${JSON.stringify(path.join(clientDir, 'examples', 'train_from_stream.py'))}, run_name="__main__")`;
      const r = await python(runExample, ['--url', url, '--token', INGEST_TOKEN, '--seconds', '6', '--report-every', '40'], noNumpy);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(noNumpy ? 'backend pure-python' : 'backend numpy');
      const losses = [...r.stdout.matchAll(/records \d+ loss ([\d.]+)/g)].map((m) => Number(m[1]));
      expect(losses.length, r.stdout).toBeGreaterThanOrEqual(3);
      const m = /loss first ([\d.]+) last ([\d.]+)/.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      expect(Number(m![2]), r.stdout).toBeLessThan(Number(m![1]));
    }, 90_000);
  }
});
