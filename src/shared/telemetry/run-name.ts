/**
 * The one rule for run names, checked at every edge that takes one (producer hellos and
 * events, URL queries, admin routes, config). Run names end up in metric labels, overlay
 * text and file names downstream, so they stay tame: no spaces, no path separators, no
 * markup, no control characters.
 */

export const RUN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** The rule in words, for error messages and help text. */
export const RUN_NAME_RULE = 'a run name is 1-128 characters of letters, digits, "_", ".", ":" or "-", starting with a letter or digit';

export function isValidRunName(run: unknown): run is string {
  return typeof run === 'string' && RUN_NAME_PATTERN.test(run);
}

/** Undefined when `run` is acceptable, else a message naming the value and the rule. */
export function runNameProblem(run: unknown): string | undefined {
  if (isValidRunName(run)) return undefined;
  const shown = typeof run === 'string' ? JSON.stringify(run.length > 60 ? `${run.slice(0, 57)}...` : run) : typeof run;
  return `invalid run name ${shown}: ${RUN_NAME_RULE}`;
}
