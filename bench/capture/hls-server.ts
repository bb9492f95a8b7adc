/**
 * Load generator for bench/capture, run as a child process so its CPU is not charged to the
 * pipelines under test: a live-hls fake of Twitch with `count` channels (bench0000 … ),
 * each carrying a 480p and a 720p60 variant of a few pre-encoded segments. There are `contents`
 * different encodes, each marked with its number (live-hls readMarker); channel i serves
 * content i % contents, so a frame delivered for the wrong channel shows.
 *
 * argv[2]: JSON { dir, count, contents }. Prints one JSON line { gqlUrl, usherUrl, playlist480, playlist720 }
 * (playlist* with "{name}" for the channel), then serves until stdin closes, and prints
 * { cpuMs, stats } on the way out.
 */
import { encodeSegments, startLiveHls } from '../lib/live-hls.js';
import { chan } from './names.js';

const { dir, count, contents } = JSON.parse(process.argv[2] ?? '{}') as { dir: string; count: number; contents: number };
if (!(Number.isInteger(contents) && contents >= 1 && contents <= 256)) throw new Error(`hls-server: contents must be an integer 1..256, got ${contents}`);
// Twitch-like bitrates (480p ~1.4 Mbps, 720p60 ~3 Mbps); noise makes keyframes realistically large.
// Encoded one after another (cached by options, so only the first run pays).
const seg480: string[][] = [];
const seg720: string[][] = [];
for (let m = 0; m < contents; m++) seg480.push(await encodeSegments({ dir, width: 852, height: 480, fps: 30, bitrateKbps: 1400, noise: 8, segments: 3, marker: m }));
for (let m = 0; m < contents; m++) seg720.push(await encodeSegments({ dir, width: 1280, height: 720, fps: 60, bitrateKbps: 3000, noise: 8, segments: 3, marker: m }));
const server = await startLiveHls({ segmentSeconds: 2 });
for (let i = 0; i < count; i++) server.addChannel(chan(i), { variants: { '480p': seg480[i % contents], '720p60': seg720[i % contents] } });
process.stdout.write(`${JSON.stringify({
  gqlUrl: server.gqlUrl,
  usherUrl: server.usherUrl,
  playlist480: server.mediaPlaylistUrl(chan(0), '480p').replace(chan(0), '{name}'),
  playlist720: server.mediaPlaylistUrl(chan(0), '720p60').replace(chan(0), '{name}'),
  pid: process.pid,
})}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, stats: server.stats() })}\n`);
  await server.close();
  process.exit(0);
});
