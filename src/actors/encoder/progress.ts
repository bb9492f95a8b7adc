/**
 * Parses ffmpeg's `-progress` output (key=value lines, a block per report ending in
 * `progress=continue` or `progress=end`) interleaved with its log lines on stderr.
 * Log lines are kept in a small bounded ring so an exit can be explained.
 */

export interface StreamHealth {
  /** Frames ffmpeg has encoded in this run. */
  frame: number;
  fps: number;
  bitrateKbps: number;
  /** Encode speed as a multiple of real time (1 = keeping up). */
  speed: number;
  outTimeS: number;
  totalBytes: number;
  /** ffmpeg's own frame-rate conversion counters (should stay 0: we feed a steady cadence). */
  dupFrames: number;
  dropFrames: number;
  /** Reports received in this run. */
  reports: number;
}

export function emptyHealth(): StreamHealth {
  return { frame: 0, fps: 0, bitrateKbps: 0, speed: 0, outTimeS: 0, totalBytes: 0, dupFrames: 0, dropFrames: 0, reports: 0 };
}

function num(value: string): number {
  const n = Number.parseFloat(value);
  return Number.isFinite(n) ? n : 0;
}

export class ProgressParser {
  health: StreamHealth = emptyHealth();
  private pending = '';
  private readonly logLines: string[] = [];
  private readonly maxLog: number;
  private readonly onReport: (h: StreamHealth) => void;
  private readonly onLog: (line: string) => void;

  /** `onLog` sees every log line (not progress keys) as kept, after `redact`. */
  constructor(onReport: (h: StreamHealth) => void = () => {}, maxLog = 20, private readonly redact: (line: string) => string = (l) => l, onLog: (line: string) => void = () => {}) {
    this.onReport = onReport;
    this.maxLog = maxLog;
    this.onLog = onLog;
  }

  /** Feed a chunk of stderr (may split lines anywhere). */
  push(chunk: string): void {
    const text = this.pending + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
      this.line(text.slice(start, nl).replace(/\r$/, ''));
      start = nl + 1;
    }
    this.pending = text.slice(start);
    // A runaway line without a newline must not grow without bound.
    if (this.pending.length > 4096) this.pending = this.pending.slice(-4096);
  }

  /** The last log lines (not progress keys), oldest first. */
  log(): string[] {
    return [...this.logLines];
  }

  private line(line: string): void {
    const m = /^([a-z_0-9]+)=\s*(.*)$/.exec(line);
    if (!m) {
      if (line.trim() === '') return;
      const kept = this.redact(line);
      this.onLog(kept);
      this.logLines.push(kept);
      if (this.logLines.length > this.maxLog) this.logLines.shift();
      return;
    }
    const h = this.health;
    const v = m[2];
    switch (m[1]) {
      case 'frame': h.frame = num(v); break;
      case 'fps': h.fps = num(v); break;
      // "1234.5kbits/s" or "N/A"
      case 'bitrate': h.bitrateKbps = num(v); break;
      case 'total_size': h.totalBytes = num(v); break;
      case 'out_time_us': h.outTimeS = num(v) / 1e6; break;
      case 'dup_frames': h.dupFrames = num(v); break;
      case 'drop_frames': h.dropFrames = num(v); break;
      // "1.01x" or "N/A"
      case 'speed': h.speed = num(v); break;
      case 'progress':
        h.reports++;
        this.onReport(h);
        break;
      default:
        break;
    }
  }
}
