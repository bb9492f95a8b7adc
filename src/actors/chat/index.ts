/**
 * Chat actor: joins the streamer's Twitch chat, answers viewer commands and runs the
 * prediction game.
 *
 *   fanout.chat ──▶ TelemetryView (latest game state, prediction, metrics) ──▶ PredictionDriver
 *   Twitch chat ──▶ commands ──▶ votes / replies ──▶ Outbox (limits, merge) ──▶ Twitch chat
 *   PredictionDriver / commands ──overlay.publish upcall──▶ main thread ──control rings──▶ overlays
 *
 * Twitch being unreachable never stops the actor: the transport keeps reconnecting, replies
 * wait in the bounded outbox, votes and overlay messages carry on.
 */
import { Counter, Gauge } from 'prom-client';
import { defineActor, type ActorContext } from '../../shared/actor.js';
import { clipCommand } from './clip-command.js';
import { consumeLoop } from '../../shared/consume-loop.js';
import type { RecordRing } from '../../shared/record-ring.js';
import { LEVELS, DEFAULT_LEVEL, type Level } from '../../shared/telemetry/channels.js';
import { readFanoutRecord } from '../../shared/telemetry/ring-records.js';
import { resolveCredentials } from './credentials.js';
import { explain, statsLine, TOPIC_NAMES } from './explain.js';
import { PredictionDriver } from './game-driver.js';
import { Outbox, outboxDefaults, type DropReason, type Priority } from './outbox.js';
import type { PredictionGameData } from './prediction-game.js';
import { TelemetryView, type GameStateData, type MilestoneData, type MovePredictionData } from './telemetry-view.js';
import { TmiTransport } from './tmi-transport.js';
import { CHAT_LEASE, runAsSingleton, type SingletonOptions } from '../../services/cluster/singleton-lease.js';
import type { ChatTransport, IncomingChatMessage, TransportState } from './transport.js';

export interface ChatOptions {
  /** Fan-out ring with every overlay message (game states, predictions, metrics, milestones). */
  inRing: string;
  /** Channel name without '#', lower case. */
  channel: string;
  /** 'host:port' of a plain-ws Twitch IRC server (tests); undefined = Twitch. */
  server: string | undefined;
  username: string;
  token: string | undefined;
  credentialsFile: string | undefined;
  predictionSeconds: number;
  userCooldownMs: number;
  /** The bot is a moderator/broadcaster: 100 messages / 30 s instead of 20. */
  moderator: boolean;
  /** Start a prediction game when a milestone arrives. */
  milestonePredictions: boolean;
  /** Clustered: the bot runs on one node of the cluster, the holder of its lease. */
  cluster?: SingletonOptions;
}

const MAX_COMMAND_CHARS = 300;
const KNOWN_COMMANDS = ['predict', 'explain', 'level', 'stats', 'help', 'startpredict', 'stoppredict', 'clip'] as const;
type CommandName = (typeof KNOWN_COMMANDS)[number];
const HELP = '!predict <move> (7g7f, P-7f or ７六歩) · !explain [topic] · !level [beginner|intermediate|advanced] · !stats · !help; mods: !startpredict, !stoppredict [cancel], !clip [title]';

function validate(ctx: ActorContext<ChatOptions>): { inRing: RecordRing } {
  const o = ctx.options;
  if (!o || typeof o !== 'object') throw new TypeError('chat: options object required');
  if (typeof o.channel !== 'string' || !/^[a-z0-9_]{2,25}$/.test(o.channel)) throw new TypeError(`chat: channel must be a lower-case Twitch channel name (got ${JSON.stringify(o.channel)})`);
  if (!Number.isFinite(o.predictionSeconds) || o.predictionSeconds <= 0) throw new TypeError('chat: predictionSeconds must be a positive number');
  const inRing = ctx.in[o.inRing] as RecordRing | undefined;
  if (!inRing) throw new Error(`chat: no input ring "${o.inRing}"`);
  return { inRing };
}

export default defineActor<ChatOptions>({
  async start(ctx) {
    const opts = ctx.options;
    const { inRing } = validate(ctx);
    const log = ctx.log;
    const reg = [ctx.metrics];
    const m = {
      messages: new Counter({ name: 'ringcast_chat_messages_total', help: 'Chat lines received', registers: reg }),
      commands: new Counter({ name: 'ringcast_chat_commands_total', help: 'Chat commands by name (unknown ones as "unknown")', labelNames: ['command'], registers: reg }),
      errors: new Counter({ name: 'ringcast_chat_errors_total', help: 'Chat command errors and failures by reason', labelNames: ['reason'], registers: reg }),
      sent: new Counter({ name: 'ringcast_chat_replies_sent_total', help: 'Chat lines sent', registers: reg }),
      dropped: new Counter({ name: 'ringcast_chat_replies_dropped_total', help: 'Replies not sent, by reason', labelNames: ['reason'], registers: reg }),
      merged: new Counter({ name: 'ringcast_chat_replies_merged_total', help: 'Replies merged into another line', registers: reg }),
      waits: new Counter({ name: 'ringcast_chat_limiter_waits_total', help: 'Times sending waited for the rate limiter', registers: reg }),
      votes: new Counter({ name: 'ringcast_chat_votes_total', help: 'Prediction votes by outcome', labelNames: ['outcome'], registers: reg }),
      games: new Counter({ name: 'ringcast_chat_prediction_games_total', help: 'Prediction games by final state', labelNames: ['state'], registers: reg }),
      connected: new Gauge({ name: 'ringcast_chat_connected', help: '1 while joined to the channel', registers: reg }),
      queue: new Gauge({ name: 'ringcast_chat_queue_length', help: 'Replies waiting to be sent', registers: reg }),
      relayDrops: new Counter({ name: 'ringcast_chat_relay_dropped_total', help: 'Overlay messages the main thread refused (malformed, too big, or a control ring full)', registers: reg }),
    };

    // ── transport ──
    const creds = resolveCredentials({ username: opts.username, token: opts.token, credentialsFile: opts.credentialsFile });
    if (creds.kind === 'anonymous') {
      if (creds.error) log.error({ error: creds.error }, 'chat: Twitch credentials unusable; joining read-only');
      log.warn({ channel: opts.channel }, 'chat: no Twitch token: joining anonymously (read-only); replies and announcements are disabled');
    }
    const transport: ChatTransport = new TmiTransport({
      channel: opts.channel,
      server: opts.server,
      credentials: creds.kind === 'token' ? creds.credentials : undefined,
      log,
    });
    let state: TransportState = 'connecting';
    let stopping = false;
    let connectedOnce = false;
    transport.onState((change) => {
      const was = state;
      state = change.state;
      m.connected.set(state === 'connected' ? 1 : 0);
      if (state === 'connected') {
        log.info({ channel: opts.channel, username: transport.username, readOnly: !transport.canSend, reconnect: connectedOnce }, 'chat: joined channel');
        connectedOnce = true;
        pump();
      } else if (state === 'disconnected' && !stopping) {
        log.error({ channel: opts.channel, reason: change.reason }, 'chat: disconnected from Twitch chat for good; replies are held until they go stale');
        m.errors.inc({ reason: 'login_refused' });
      } else if (was === 'connected') {
        log.warn({ channel: opts.channel, reason: change.reason }, 'chat: disconnected; reconnecting');
        m.errors.inc({ reason: 'disconnected' });
      }
    });

    // ── outgoing ──
    let pumpTimer: NodeJS.Timeout | undefined;
    const outbox = new Outbox(outboxDefaults(opts.moderator, opts.userCooldownMs), {
      deliver: (text) => {
        transport.say(text).catch((error: unknown) => {
          outbox.sendFailed();
          m.errors.inc({ reason: 'send_failed' });
          log.debug({ err: (error as Error)?.message ?? String(error) }, 'chat: a line could not be sent');
        });
      },
      sent: (n) => m.sent.inc(n),
      dropped: (reason: DropReason, n) => m.dropped.inc({ reason }, n),
      merged: (n) => m.merged.inc(n),
      limiterWait: () => m.waits.inc(),
    });
    outbox.setReadOnly(!transport.canSend);
    // Twitch drops a refused line without telling the sender anything but this NOTICE.
    const REFUSALS: Record<string, number> = { msg_ratelimit: 2_000, msg_slowmode: 2_000, msg_duplicate: 1_100 };
    transport.onNotice?.((msgId) => {
      const pauseMs = REFUSALS[msgId];
      if (pauseMs === undefined) return;
      m.errors.inc({ reason: msgId });
      const retried = outbox.refused(Date.now(), pauseMs, msgId === 'msg_duplicate');
      log.warn({ notice: msgId, retried }, 'chat: Twitch refused a line');
      pump();
    });
    function pump(): void {
      if (pumpTimer) { clearTimeout(pumpTimer); pumpTimer = undefined; }
      const delay = outbox.pump(Date.now(), state === 'connected');
      m.queue.set(outbox.length);
      if (delay !== undefined && !stopping) {
        pumpTimer = setTimeout(pump, Math.max(5, delay));
        pumpTimer.unref?.();
      }
    }
    const reply = (msg: IncomingChatMessage, text: string, priority: Priority = 'normal') => {
      outbox.enqueue({ user: msg.displayName, userKey: msg.userId, text, priority }, Date.now());
      pump();
    };
    const announce = (text: string) => {
      outbox.enqueue({ text, priority: 'high' }, Date.now());
      pump();
    };

    // ── overlay relay ──
    // Overlay messages go to the main thread, which writes them into every gateway's control
    // ring and keeps the retained ones for new clients and restarted gateways. Chat lines and
    // game states are a few a second: one upcall each costs far less than a ring per gateway
    // (and a second copy of the retained state) would.
    function relay(type: string, channel: string, key: string, data: unknown, flags: { critical?: boolean; retain?: boolean }): void {
      ctx.callMain<boolean>('overlay.publish', { type, channel, key, critical: flags.critical === true, retain: flags.retain === true, data })
        .then((written) => { if (!written) m.relayDrops.inc(); })
        .catch((error: unknown) => {
          m.relayDrops.inc();
          log.warn({ type, err: (error as Error)?.message ?? String(error) }, 'chat: an overlay message was not published');
        });
    }

    // ── prediction game ──
    const view = new TelemetryView();
    const driver = new PredictionDriver(view, {
      durationMs: opts.predictionSeconds * 1000,
      milestoneGames: opts.milestonePredictions,
      now: () => Date.now(),
      publish: (data, critical) => relay('prediction_game', 'game', 'prediction_game', data, { critical, retain: true }),
      announce,
      store: (data: PredictionGameData) => {
        ctx.callMain('state.put', 'prediction_games', data.id, data).catch((error: unknown) => {
          m.errors.inc({ reason: 'store_failed' });
          log.warn({ id: data.id, err: (error as Error)?.message ?? String(error) }, 'chat: a prediction game could not be stored');
        });
      },
      onFinished: (data) => {
        m.games.inc({ state: data.state });
        log.info({ id: data.id, state: data.state, votes: data.total_votes, played: data.result?.played_move, reason: data.reason }, 'chat: prediction game over');
      },
    });

    /** `replayed`: a retained message seeded after a restart (old news: it starts no game). */
    const handleRecord = (data: Uint8Array, offset: number, length: number, replayed = false) => {
      try {
        const ev = view.apply(data, offset, length);
        if (!ev) return;
        if (ev.type === 'game_state') driver.onGameState(ev.data as unknown as GameStateData);
        else if (ev.type === 'move_prediction') driver.onPrediction(ev.data as MovePredictionData);
        else if (ev.type === 'milestone') driver.onMilestone(ev.data as MilestoneData, replayed);
      } catch (error) {
        m.errors.inc({ reason: 'telemetry' });
        log.warn({ err: (error as Error).message }, 'chat: a telemetry message could not be applied');
      }
    };
    /**
     * A game our previous incarnation left running is still the overlays' retained
     * prediction_game: close it as cancelled (and store it) rather than leave it on screen.
     */
    function closeOrphanedGame(record: Uint8Array): void {
      const rec = readFanoutRecord(record, 0, record.byteLength);
      if (rec.key !== 'prediction_game') return;
      const msg = JSON.parse(new TextDecoder().decode(record.subarray(rec.bodyOffset, rec.bodyOffset + rec.bodyLength))) as { data?: PredictionGameData };
      const d = msg.data;
      if (!d || (d.state !== 'collecting' && d.state !== 'waiting')) return;
      const closed: PredictionGameData = { ...d, state: 'cancelled', reason: 'the chat service restarted during the game', closed_at: Date.now() };
      relay('prediction_game', 'game', 'prediction_game', closed, { critical: true, retain: true });
      ctx.callMain('state.put', 'prediction_games', closed.id, closed).catch(() => m.errors.inc({ reason: 'store_failed' }));
      log.warn({ id: d.id }, 'chat: cancelled the prediction game a previous incarnation left running');
    }
    // A restarted chat actor picks up the latest retained messages (its ring position is past them).
    if (ctx.incarnation > 0) {
      try {
        const records = await ctx.callMain<Uint8Array[]>('retained');
        for (const r of records) {
          handleRecord(r, 0, r.byteLength, true);
          closeOrphanedGame(r);
        }
      } catch (error) {
        log.warn({ err: (error as Error)?.message }, 'chat: could not seed from retained messages');
      }
    }
    const loop = consumeLoop(inRing, handleRecord, ctx.signal, { batch: 256 });

    // ── commands ──
    const clip = clipCommand(ctx.callMain);
    const levels = new Map<string, Level>();
    const levelOf = (userId: string): Level => levels.get(userId) ?? DEFAULT_LEVEL;
    const fail = (msg: IncomingChatMessage, reason: string, text: string, priority: Priority = 'normal') => {
      m.errors.inc({ reason });
      reply(msg, text, priority);
    };

    function gameLine(): string | undefined {
      const g = driver.current;
      if (!g?.active) return undefined;
      const secs = Math.max(0, Math.ceil((g.endsAt - Date.now()) / 1000));
      return g.state === 'collecting' ? `prediction game: ${g.voterCount} votes, ${secs} s left` : 'prediction game: waiting for the AI\'s move';
    }

    function handleCommand(msg: IncomingChatMessage, name: CommandName, args: string): void {
      const privileged = msg.isMod || msg.isBroadcaster;
      switch (name) {
        case 'predict': {
          if (!args) return fail(msg, 'bad_args', 'usage: !predict <move>, e.g. !predict 7g7f, !predict P-7f or !predict ７六歩');
          const r = driver.vote(msg.userId, msg.displayName, args);
          if (!r.ok) {
            m.votes.inc({ outcome: 'rejected' });
            return fail(msg, /no prediction game|voting has closed/.test(r.error) ? 'not_running' : 'bad_move', r.error);
          }
          m.votes.inc({ outcome: r.changed ? 'changed' : 'accepted' });
          // Low priority: the overlay shows the vote; this confirmation is the first thing dropped.
          return reply(msg, r.changed ? `vote changed to ${r.label} (${r.usi})` : `vote counted: ${r.label} (${r.usi})`, 'low');
        }
        case 'explain': {
          const r = explain(args.split(/\s+/)[0] || undefined, levelOf(msg.userId), view);
          return r.ok ? reply(msg, r.text) : fail(msg, 'bad_args', r.error);
        }
        case 'level': {
          if (!args) return reply(msg, `your explanation level is ${levelOf(msg.userId)} (choose beginner, intermediate or advanced)`);
          const wanted = args.toLowerCase().split(/\s+/)[0] as Level;
          if (!(LEVELS as readonly string[]).includes(wanted)) return fail(msg, 'bad_args', `unknown level "${args.slice(0, 20)}"; use beginner, intermediate or advanced`);
          levels.delete(msg.userId);
          levels.set(msg.userId, wanted);
          if (levels.size > 10_000) levels.delete(levels.keys().next().value as string);
          return reply(msg, `explanation level set to ${wanted}`);
        }
        case 'stats':
          return reply(msg, statsLine(view, gameLine()));
        case 'help':
          return reply(msg, `${HELP}. !explain topics: ${TOPIC_NAMES.join(', ')}`);
        case 'startpredict': {
          if (!privileged) return fail(msg, 'permission', 'only moderators and the broadcaster can start a prediction game');
          const r = driver.start(msg.displayName);
          if (!r.ok) return fail(msg, 'cannot_start', `cannot start: ${r.error}`);
          return; // the announcement is the answer
        }
        case 'stoppredict': {
          if (!privileged) return fail(msg, 'permission', 'only moderators and the broadcaster can stop a prediction game');
          const cancel = /^cancel\b/i.test(args);
          if (args && !cancel) return fail(msg, 'bad_args', 'usage: !stoppredict (close voting) or !stoppredict cancel');
          const r = driver.stop(msg.displayName, cancel);
          if (!r.ok) return fail(msg, 'not_running', r.error);
          return;
        }
        case 'clip': {
          if (!privileged) return fail(msg, 'permission', 'only moderators and the broadcaster can make a clip');
          return clip.run(msg.displayName, args, (text) => reply(msg, text), (reason, text) => fail(msg, reason, text));
        }
      }
    }

    transport.onMessage((msg) => {
      m.messages.inc();
      const text = msg.text.trim();
      if (!text.startsWith('!') || text.length < 2) return;
      const match = /^!(\S+)\s*([\s\S]*)$/.exec(text.slice(0, MAX_COMMAND_CHARS));
      if (!match) return;
      const name = match[1].toLowerCase();
      const args = match[2].trim();
      const known = (KNOWN_COMMANDS as readonly string[]).includes(name);
      m.commands.inc({ command: known ? name : 'unknown' });
      relay('chat_message', 'chat', 'chat_message', {
        id: msg.id, user: msg.user, display_name: msg.displayName, is_mod: msg.isMod || msg.isBroadcaster,
        command: known ? name : null, text: text.slice(0, MAX_COMMAND_CHARS), at: Date.now(),
      }, {});
      if (!known) return fail(msg, 'unknown_command', `unknown command !${name.slice(0, 20)}; try !help`, 'low');
      try {
        handleCommand(msg, name as CommandName, args);
      } catch (error) {
        m.errors.inc({ reason: 'internal' });
        log.error({ command: name, err: (error as Error)?.message ?? String(error) }, 'chat: a command failed');
        reply(msg, 'sorry, that command failed on our side');
      }
    });

    // Connect in the background: Twitch being down must not fail the actor's start.
    const connect = () => transport.connect().catch((error: unknown) => {
      m.errors.inc({ reason: 'connect_failed' });
      log.warn({ channel: opts.channel, server: opts.server ?? 'twitch', err: (error as Error)?.message ?? String(error) }, 'chat: first connection failed; tmi.js keeps retrying');
    });
    // Clustered: one chat bot for the whole cluster, on the node holding its lease.
    const singleton = opts.cluster
      ? runAsSingleton(opts.cluster, CHAT_LEASE, log, () => void connect(), () => setImmediate(() => {
        throw new Error('chat: this node no longer holds the cluster\'s chat bot lease; restarting to contest it again');
      }))
      : (void connect(), undefined);
    log.info({ channel: opts.channel, server: opts.server ?? 'twitch', readOnly: !transport.canSend, predictionSeconds: opts.predictionSeconds, moderator: opts.moderator }, 'chat actor started');

    const status = () => ({
      connected: state === 'connected',
      state,
      channel: opts.channel,
      username: transport.username,
      readOnly: !transport.canSend,
      game: driver.current ? driver.current.data() : null,
      last: driver.last ?? null,
      games: { ...driver.counts },
      queue: { length: outbox.length, ...outbox.stats, dropped: { ...outbox.stats.dropped } },
    });

    return {
      api: {
        startPrediction: (arg?: { by?: string }) => driver.start(typeof arg?.by === 'string' && arg.by ? arg.by.slice(0, 64) : 'control page'),
        stopPrediction: (arg?: { by?: string; cancel?: boolean }) => driver.stop(typeof arg?.by === 'string' && arg.by ? arg.by.slice(0, 64) : 'control page', arg?.cancel === true),
        status,
      },
      async stop() {
        stopping = true;
        driver.dispose();
        if (pumpTimer) clearTimeout(pumpTimer);
        await loop;
        await transport.disconnect().catch(() => undefined);
        await singleton?.stop(); // another node takes the bot over at once
        return { games: { ...driver.counts } };
      },
    };
  },
});
