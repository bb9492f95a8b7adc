/** The `--replay <dir>` check made before anything starts: a bad directory is the operator's to fix (exit 2). */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../shared/config.js';
import { SEGMENT_FILE } from '../../shared/recording/format.js';
import { runNameProblem } from '../../shared/telemetry/run-name.js';

/** Throws ConfigError unless `dir` is a run's recording directory (its name is the run name). */
export function checkReplayDir(dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new ConfigError(`recording.replayDir (--replay): ${JSON.stringify(dir)} is not a directory; give a run's recording directory, e.g. <dataDir>/recordings/<run>`);
  const problem = runNameProblem(path.basename(path.resolve(dir)));
  if (problem !== undefined) throw new ConfigError(`recording.replayDir (--replay): the directory's name is the replayed run's name, and ${problem}`);
  if (!readdirSync(dir).some((n) => SEGMENT_FILE.test(n))) throw new ConfigError(`recording.replayDir (--replay): ${JSON.stringify(dir)} holds no recording segments (*.seg)`);
}
