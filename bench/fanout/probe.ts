/**
 * One ordinary `ws` client next to the load generator's raw clients, with two jobs:
 *
 *   - count what the server actually published in the window: a fast client sees every
 *     message, so clients × its count is what the fan-out had to deliver, which tells a
 *     fan-out shortfall apart from fewer updates upstream (e.g. the aggregator merging
 *     two ticks that fell into one window);
 *   - keep the latest message of each type, so the `ws` baseline can send the real
 *     service's shapes and sizes (its aggregator decides them; payloads.ts only
 *     approximates them for the stand-in).
 */
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';

export interface MessageTemplate {
  type: string;
  data: unknown;
  /** Size of the message as sent. */
  bytes: number;
}

export class Probe {
  private readonly ws: WebSocket;
  private readonly latest = new Map<string, MessageTemplate>();
  private readonly counts = new Map<string, number>();
  private s0 = Infinity;
  private s1 = -Infinity;
  // Stamps seen, as angles on the tick circle, to find the server's stamp phase.
  private sin = 0;
  private cos = 0;
  private stamps = 0;
  /** Resolves once the subscription is live (first message received). */
  readonly ready: Promise<void>;

  constructor(url: string, subscription: string, private readonly types: readonly string[], private readonly periodMs: number) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ready = new Promise((resolve, reject) => {
      this.ws.once('open', () => this.ws.send(subscription));
      this.ws.once('message', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('close', () => reject(new Error('probe connection closed before its first message')));
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (raw) => this.onMessage(String(raw)));
  }

  /** Count messages stamped inside [s0, s1) (server wall ms). */
  window(s0: number, s1: number): void {
    this.s0 = s0;
    this.s1 = s1;
    this.counts.clear();
  }

  /**
   * Where in the tick period the server stamps its messages (ms in [0, period)), from
   * the stamps seen so far; NaN before any. A circular mean, since 99 and 1 are 2 apart.
   * The real service stamps when its aggregator closes a window, on a timer of its own,
   * so this cannot be assumed to be the phase of our ticks.
   */
  stampPhase(): number {
    if (this.stamps === 0) return NaN;
    const a = Math.atan2(this.sin, this.cos);
    return (((a / (2 * Math.PI)) * this.periodMs) % this.periodMs + this.periodMs) % this.periodMs;
  }

  private onMessage(text: string): void {
    let msg: { type?: unknown; data?: unknown; timestamp?: unknown };
    try { msg = JSON.parse(text); } catch { return; }
    if (typeof msg.type !== 'string' || !this.types.includes(msg.type) || typeof msg.timestamp !== 'number') return;
    const ts = msg.timestamp;
    const angle = ((ts % this.periodMs) / this.periodMs) * 2 * Math.PI;
    this.sin += Math.sin(angle);
    this.cos += Math.cos(angle);
    this.stamps++;
    if (ts >= this.s0 && ts < this.s1) {
      this.counts.set(msg.type, (this.counts.get(msg.type) ?? 0) + 1);
      this.latest.set(msg.type, { type: msg.type, data: msg.data, bytes: Buffer.byteLength(text) });
    }
  }

  /** Messages per type stamped inside the window. */
  windowCounts(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** The last message of each type stamped inside the window. */
  templates(): MessageTemplate[] {
    return [...this.latest.values()];
  }

  close(): void {
    this.ws.terminate();
  }
}

export function writeTemplates(file: string, templates: MessageTemplate[]): void {
  writeFileSync(file, JSON.stringify(templates));
}
