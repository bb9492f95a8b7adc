/**
 * The compose benchmark's baseline, in a process of its own: the usual approach, a Node
 * process rendering the same scene (SceneRenderer, same overlay data, no video source) and
 * piping raw RGBA frames to ffmpeg, with the product's ffmpeg arguments and audio
 * (buildFfmpegArgs), so only the path differs. Progress goes to stdout for the pipeline's reader.
 *
 *   node dist/bench/compose/raw-pipe-child.js '<ComposeSpec JSON>'  → IPC { type: 'result', result: RunResult }
 */
import { buildFfmpegArgs, classifyOutput } from '../../src/actors/encoder/options.js';
import { runPipeline } from './pipeline.js';
import { sceneProducers } from './producers.js';
import type { ComposeSpec } from './product-child.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as ComposeSpec;

async function main() {
  const o = { inRing: '', width: spec.width, height: spec.height, fps: spec.fps, outputs: [spec.output], bitrateKbps: 4500, preset: 'veryfast', keyframeSeconds: 2, encoder: 'libx264', audio: 'silence' as const };
  const args = buildFfmpegArgs(o, 'libx264', [classifyOutput(spec.output, o.keyframeSeconds)], 0).map((a) => (a === 'pipe:2' ? 'pipe:1' : a));
  const producers = await sceneProducers(spec.width, spec.height, spec.fps, spec.preset ? { preset: spec.preset } : { video: false });
  return runPipeline({ label: `${spec.width}x${spec.height}@${spec.fps} raw pipe`, width: spec.width, height: spec.height, fps: spec.fps, durationS: spec.durationS, input: 'raw', preset: 'veryfast', output: spec.output, ffmpegArgs: args }, producers.raw);
}

main().then(
  (result) => process.send?.({ type: 'result', result }, () => process.exit(0)),
  (err: Error) => process.send?.({ type: 'failed', error: err.stack ?? err.message }, () => process.exit(1)),
);
