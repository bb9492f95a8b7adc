/**
 * Polls `probe` until it returns a value (not undefined), at most `ms`; the error says what was
 * awaited and, through `show`, the last state seen.
 */
export async function pollUntil<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined, show: () => Promise<unknown> | unknown = () => '', everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last state: ${JSON.stringify(await show()).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
