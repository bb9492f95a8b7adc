/**
 * What the encoder needs from outside the config, checked in the main thread before anything
 * starts, so an operator's mistake is a config error (exit 2) naming the path or variable,
 * not an actor that fails and restarts: the audio file exists and is readable, and every
 * named destination has its stream key.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, type Config } from '../../shared/config.js';
import { resolveDestinations, type ResolvedDestination } from './destinations.js';
import { audioInputKind } from './options.js';

export interface EncoderPreflight {
  destinations: Record<string, ResolvedDestination>;
}

export function encoderPreflight(config: Config, env: NodeJS.ProcessEnv): EncoderPreflight {
  const { outputs, audio } = config.compose;
  if (outputs.length === 0) return { destinations: {} };
  if (audioInputKind(audio) === 'file') {
    const path = resolve(audio);
    let problem: string | undefined;
    try {
      if (!statSync(path).isFile()) problem = 'is not a file';
      else accessSync(path, constants.R_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problem ??= code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (error as Error).message})`;
    }
    if (problem) throw new ConfigError(`compose.audio: audio file ${JSON.stringify(path)} ${problem}`);
  }
  try {
    return { destinations: resolveDestinations(outputs, env) };
  } catch (error) {
    throw new ConfigError(`compose.outputs: ${(error as Error).message}`);
  }
}
