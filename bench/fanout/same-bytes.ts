/**
 * The messages of one tick as every client receives them, serialised once: what the
 * "serialise once, send to all" baselines (ws-once.ts, uws-raw.ts) send. Every bench
 * client subscribes to the same channels at the same level, so one list serves all.
 * With templates (the real service's messages, seen by the probe) the bytes are the
 * service's; otherwise the stand-in payloads of payloads.ts.
 */
import { readFileSync } from 'node:fs';
import type { MessageTemplate } from './probe.js';
import { channelData, CLIENT_LEVEL, envelope, SUBSCRIBED_CHANNELS, tickData } from './payloads.js';

export function loadTemplates(templatesFile: string | undefined): MessageTemplate[] | undefined {
  if (!templatesFile) return undefined;
  const templates = JSON.parse(readFileSync(templatesFile, 'utf8')) as MessageTemplate[];
  if (!Array.isArray(templates) || templates.length === 0) throw new Error(`${templatesFile} holds no message templates`);
  return templates;
}

export function tickMessages(tick: number, stamp: number, templates: MessageTemplate[] | undefined): string[] {
  if (templates) return templates.map((t) => JSON.stringify({ type: t.type, timestamp: stamp, data: t.data }));
  const data = channelData(tickData(tick));
  return SUBSCRIBED_CHANNELS.map((c) => envelope(c, data[c], CLIENT_LEVEL, stamp));
}

export function templatesNote(who: string, templates: MessageTemplate[] | undefined): string | undefined {
  return templates ? `${who} sends the real service's messages (${templates.map((t) => `${t.type} ${t.bytes} B`).join(', ')})` : undefined;
}
