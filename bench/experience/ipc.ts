/** Messages between bench/experience.ts and its child processes. */
export type Impl = 'ours' | 'baseline';

export type FromChild =
  | { type: 'ready'; port?: number }
  | { type: 'window'; cpuUserUs?: number; cpuSystemUs?: number; wallMs?: number; rssMaxBytes?: number; records?: number; bytes?: number; dropped?: number; missed?: number; latenciesMs?: number[]; serverLatenciesMs?: number[]; sent?: number; perConsumer?: number[]; ringDrops?: Record<string, number> }
  | { type: 'failed'; error: string };

export type ToChild = { type: 'begin' } | { type: 'end' } | { type: 'stop' };

export function send(msg: FromChild): void {
  process.send?.(msg);
}
export const BENCH_TOKEN = 'bench-experience-token';
