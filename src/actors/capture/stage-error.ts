// The error shape every capture stage throws: a machine-readable code (what the scheduler
// and the REST API report) and, where an HTTP answer caused it, its status.

export class StageError<Code extends string> extends Error {
  readonly code: Code;
  readonly status?: number;
  constructor(code: Code, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    if (status !== undefined) this.status = status;
  }
}
