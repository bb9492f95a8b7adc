/**
 * Per-actor control words in shared memory, owned by the supervisor.
 *
 * Layout (Int32Array over a 64-byte SharedArrayBuffer, one cache line):
 *   [0] heartbeat  — incremented by the actor; the supervisor watches it change.
 *   [1] state      — ActorState below, written by the actor host.
 *   [2] incarnation — written by the supervisor before activation.
 *
 * Why shared memory and not a message: a hung actor (stuck event loop, busy loop)
 * cannot answer messages, but the supervisor can still see that its counter stopped.
 */
export enum ActorState {
  Loading = 0,
  Starting = 1,
  Running = 2,
  Stopping = 3,
  Stopped = 4,
}

const HEARTBEAT = 0;
const STATE = 1;
const INCARNATION = 2;

export class ControlBlock {
  readonly sab: SharedArrayBuffer;
  private readonly words: Int32Array;

  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(64)) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < 64) {
      throw new TypeError('ControlBlock needs a SharedArrayBuffer of at least 64 bytes');
    }
    this.sab = sab;
    this.words = new Int32Array(sab, 0, 16);
  }

  beat(): void {
    Atomics.add(this.words, HEARTBEAT, 1);
  }

  heartbeat(): number {
    return Atomics.load(this.words, HEARTBEAT);
  }

  setState(state: ActorState): void {
    Atomics.store(this.words, STATE, state);
  }

  setIncarnation(n: number): void {
    Atomics.store(this.words, INCARNATION, n);
  }
}
