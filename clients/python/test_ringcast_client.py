"""Tests for ringcast_client against a small in-process server that parses the wire format.

Run: python3 -m unittest clients/python/test_ringcast_client.py   (stdlib only; numpy tests skip without numpy)

The expected bytes below are built by hand from the format in
src/shared/telemetry/event-codec.ts, not with the client's own encoder, so an encoder
bug cannot hide behind itself.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ringcast_client as rc  # noqa: E402

try:
    import numpy as np
except ImportError:  # the client works without numpy; only the numpy-path tests skip
    np = None

TS = 1234.5
HDR = struct.Struct("<BBHId")


def event_bytes(kind, meta_json=b"", payload=b"", ts=TS):
    return HDR.pack(0x52, kind, len(meta_json), len(payload), ts) + meta_json + payload


def split_events(frame):
    """Independent parser: frame -> list of (kind, meta dict, payload bytes, raw bytes)."""
    out = []
    off = 0
    while off < len(frame):
        magic, kind, ml, pl, _ = HDR.unpack_from(frame, off)
        assert magic == 0x52, "bad magic"
        raw = frame[off : off + 16 + ml + pl]
        assert len(raw) == 16 + ml + pl, "truncated event"
        meta = json.loads(raw[16 : 16 + ml]) if ml else {}
        out.append((kind, meta, raw[16 + ml :], raw))
        off += len(raw)
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=5.0, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class FrameServer:
    """TCP (length-prefixed) or WebSocket test server recording every frame it receives.

    reply: None (silent), "ack" (Ack after a hello), "error" (Ack after a hello, two Error
    events for every other frame) or "hello_error" (an Error, not an Ack, for the hello, but
    no close: the way ringcast answers a run name it will not take).
    frame_acks: answer a hello that asks for acks as ringcast does, and ack every later frame
    ({"frames": n}). fail_after=(acked, unacked, close): the first connection acks `acked`
    frames, takes `unacked` more without acking them (a server that died before it handled
    them), then closes (close=True) or goes silent.
    """

    def __init__(self, port=0, reply="ack", ws=False, bad_accept=False, ping=False, frame_acks=False, fail_after=None):
        self.port = port
        self.reply = reply
        self.ws = ws
        self.bad_accept = bad_accept
        self.ping = ping
        self.frame_acks = frame_acks
        self.fail_after = fail_after
        self.swallowed = []  # frames taken and never acknowledged
        self.frames = []
        self.pongs = []
        self.connections = 0
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None

    def start(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(8)
        self.port = ls.getsockname()[1]
        self.listener = ls
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        if self.listener:
            try:
                # shutdown wakes the accept() thread; close alone leaves the port bound until it returns.
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.listener.close()
            except OSError:
                pass
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    @property
    def events(self):
        with self.lock:
            return [e for f in self.frames for e in split_events(f)]

    def _accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _recv(self, c, n, buf):
        while len(buf) < n:
            chunk = c.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def _send(self, c, frame):
        if self.ws:
            n = len(frame)
            head = bytes((0x82, n)) if n < 126 else bytes((0x82, 126)) + struct.pack("!H", n)
            c.sendall(head + frame)
        else:
            c.sendall(struct.pack("<I", len(frame)) + frame)

    def _serve(self, c):
        buf = bytearray()
        acking = False
        counted = 0
        with self.lock:
            fail = self.fail_after if self.connections == 1 else None
        try:
            if self.ws:
                self._ws_handshake(c, buf)
            while True:
                frame = self._ws_frame(c, buf) if self.ws else self._recv(c, struct.unpack("<I", self._recv(c, 4, buf))[0], buf)
                if frame is None:
                    continue
                events = split_events(frame)
                kinds = [e[0] for e in events]
                if acking:
                    counted += 1
                    if fail and counted > fail[0]:
                        with self.lock:
                            self.swallowed.append(frame)
                        if counted == fail[0] + fail[1]:
                            if fail[2]:
                                c.shutdown(socket.SHUT_RDWR)
                                return
                            while c.recv(65536):  # silent: read and ignore until the client gives up
                                pass
                            return
                        continue
                with self.lock:
                    self.frames.append(frame)
                if acking:
                    self._send(c, event_bytes(18, b'{"frames":%d}' % counted))
                elif self.frame_acks and 16 in kinds and events[kinds.index(16)][1].get("acks") is True:
                    acking = True
                    self._send(c, event_bytes(18, b'{"ok":true,"run":"r1","acks":true}'))
                elif self.reply == "hello_error" and 16 in kinds:
                    self._send(c, event_bytes(17, b'{"error":"bad run name","kind":"hello"}'))
                elif self.reply is not None and 16 in kinds:
                    self._send(c, event_bytes(18, b'{"ok":true,"run":"r1"}'))
                elif self.reply == "error":
                    self._send(c, event_bytes(17, b'{"error":"nope","kind":"metrics","index":0}') + event_bytes(17, b'{"error":"nope again"}'))
        except (EOFError, OSError):
            pass

    def _ws_handshake(self, c, buf):
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                raise EOFError
            buf += chunk
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        buf[:] = rest
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.request_headers = headers
        key = headers["sec-websocket-key"] + ("x" if self.bad_accept else "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        if self.ping:
            c.sendall(bytes((0x89, 4)) + b"ping")

    def _ws_frame(self, c, buf):
        b0, b1 = self._recv(c, 2, buf)
        assert b1 & 0x80, "client frames must be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._recv(c, 2, buf))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._recv(c, 8, buf))[0]
        key = self._recv(c, 4, buf)
        data = bytes(b ^ key[i % 4] for i, b in enumerate(self._recv(c, n, buf)))
        opcode = b0 & 0x0F
        if opcode == 0xA:
            self.pongs.append(data)
            return None
        if opcode == 0x8:
            raise EOFError
        assert opcode == 0x2 and b0 & 0x80, "expected a final binary frame"
        return data


def delivered(hook, server, timeout=5.0):
    """flush() means handed to the kernel; also wait until the server thread has read it all."""
    if not hook.flush(timeout):
        return False
    st = hook.stats()
    return wait_until(lambda: len(server.frames) >= st["sent_frames"] + st["connects"], timeout)


def hook_for(server, **kw):
    kw.setdefault("clock", lambda: TS)
    kw.setdefault("flush_interval", 0.01)
    scheme = "ws" if server.ws else "tcp"
    return rc.StreamingHook("%s://127.0.0.1:%d%s" % (scheme, server.port, "/ingest" if server.ws else ""), token="tok-12345", run="r1", **kw)


class EncodingTest(unittest.TestCase):
    def setUp(self):
        self.server = FrameServer().start()
        self.hook = hook_for(self.server)

    def tearDown(self):
        self.hook.close(timeout=1)
        self.server.stop()

    def sent(self):
        self.assertTrue(delivered(self.hook, self.server), self.hook.stats())
        return [e[3] for e in self.server.events]

    def test_hello_is_first_and_each_kind_is_byte_exact(self):
        h = self.hook
        self.assertTrue(h.emit_ppo_metrics({"ppo/kl": 0.5, "loss": -1.25}, 7))
        h.cache_attention_weights([[0.5, 0.25], [1, 2]])
        h.cache_attention_weights([0.5, 1.5, -2.0], layer_id=3, step=9)
        grid = [[r * 9 + c for c in range(9)] for r in range(9)]
        h.emit_board_heatmap(grid)
        h.emit_predictions([("7g7f", 0.5), {"move": "2g2f", "prob": 0.25}], position="startpos", value=0.1, step=3)
        h.emit_game_state("g1", sfen="lnsgkgsnl/9/9/9/9/9/9/9/LNSGKGSNL b - 1", moves=["7g7f"], last_move="7g7f", move_count=1, elo=1500)
        h.emit_milestone("first_win", message="hi", step=10, value=1.0)
        h.emit_experience("g1", "p0", 5, [[1, 2], [3, 4]], 17, -1, True, legal_mask=[1, 0, 1, 1, 0, 0, 0, 0, 1])
        got = self.sent()
        expected = [
            event_bytes(16, b'{"token":"tok-12345","run":"r1","client":"ringcast-python/%s","acks":true}' % rc.__version__.encode()),
            event_bytes(1, b"", struct.pack("<dH", 7, 2) + b"\x06ppo/kl" + struct.pack("<d", 0.5) + b"\x04loss" + struct.pack("<d", -1.25)),
            event_bytes(2, b'{"blocks":2,"channels":2}', struct.pack("<4f", 0.5, 0.25, 1, 2)),
            event_bytes(2, b'{"blocks":1,"channels":3,"layer_id":3,"step":9}', struct.pack("<3f", 0.5, 1.5, -2.0)),
            event_bytes(3, b"", struct.pack("<81f", *range(81))),
            event_bytes(4, b'{"top_moves":[{"move":"7g7f","prob":0.5},{"move":"2g2f","prob":0.25}],"step":3,"value":0.1,"position":"startpos"}'),
            event_bytes(5, b'{"game_id":"g1","sfen":"lnsgkgsnl/9/9/9/9/9/9/9/LNSGKGSNL b - 1","moves":["7g7f"],"last_move":"7g7f","move_count":1,"elo":1500}'),
            event_bytes(6, b'{"name":"first_win","message":"hi","step":10,"value":1.0}'),
            event_bytes(
                7,
                b'{"game_id":"g1","player_id":"p0","turn":5,"action":17,"reward":-1.0,"done":true,"state_shape":[2,2],"mask_len":9}',
                struct.pack("<4f", 1, 2, 3, 4) + bytes((0b00001101, 0b00000001)),
            ),
        ]
        self.assertEqual(len(got), len(expected))
        for i, (g, e) in enumerate(zip(got, expected)):
            self.assertEqual(g, e, "event %d differs" % i)
        self.assertTrue(wait_until(lambda: h.stats()["acks"] >= 1))
        st = h.stats()
        self.assertEqual(st["sent"], 8)  # the hello is not a telemetry event
        self.assertEqual(st["state"], "connected")
        self.assertEqual(st["last_ack"], {"ok": True, "run": "r1"})

    def test_non_finite_metrics_are_skipped_and_counted(self):
        self.hook.emit_ppo_metrics({"a": float("nan"), "b": 2.0, "c": float("inf"), "d": "x"}, 1)
        self.assertFalse(self.hook.emit_ppo_metrics({"a": float("nan")}, 2))
        got = self.sent()
        self.assertEqual(got[1], event_bytes(1, b"", struct.pack("<dH", 1, 1) + b"\x01b" + struct.pack("<d", 2.0)))
        st = self.hook.stats()
        self.assertEqual(st["skipped_values"], 3)
        self.assertEqual(st["invalid"]["metrics"], 1)

    def test_json_meta_never_carries_nan(self):
        self.hook.emit_milestone("m", value=float("nan"), extra_field=float("inf"))
        got = self.sent()
        self.assertEqual(got[1], event_bytes(6, b'{"name":"m","extra_field":null}'))

    @unittest.skipIf(np is None, "numpy not installed")
    def test_numpy_inputs_use_the_buffer_path(self):
        w = np.arange(9 * 256, dtype=np.float64).reshape(9, 256) / 7.0
        grid = np.linspace(0, 1, 81).reshape(9, 9)
        state = np.random.default_rng(1).random((46, 9, 9), dtype=np.float32)
        mask = np.zeros(13527, dtype=bool)
        mask[[0, 5, 13526]] = True
        self.hook.cache_attention_weights(w, step=np.int64(4))
        self.hook.emit_board_heatmap(grid, step=2, source="policy")
        self.hook.emit_experience(7, 1, np.int32(3), state, np.int64(99), np.float32(0.5), np.bool_(False), legal_mask=mask)
        self.hook.emit_ppo_metrics({"x": np.float32(0.25)}, np.int64(5))
        got = self.sent()
        self.assertEqual(got[1], event_bytes(2, b'{"blocks":9,"channels":256,"step":4}', w.astype("<f4").tobytes()))
        self.assertEqual(got[2], event_bytes(3, b'{"step":2,"source":"policy"}', grid.astype("<f4").tobytes()))
        bits = np.packbits(mask, bitorder="little").tobytes()
        self.assertEqual(bits[0], 0b00100001)
        self.assertEqual(got[3], event_bytes(
            7,
            b'{"game_id":"7","player_id":"1","turn":3,"action":99,"reward":0.5,"done":false,"state_shape":[46,9,9],"mask_len":13527}',
            state.astype("<f4").tobytes() + bits,
        ))
        self.assertEqual(got[4], event_bytes(1, b"", struct.pack("<dH", 5, 1) + b"\x01x" + struct.pack("<d", 0.25)))

    @unittest.skipIf(np is None, "numpy not installed")
    def test_numpy_non_finite_tensor_is_rejected(self):
        w = np.ones((2, 3), dtype=np.float32)
        w[1, 1] = np.nan
        self.assertFalse(self.hook.cache_attention_weights(w))
        self.assertEqual(self.hook.stats()["invalid"]["se_attention"], 1)


class BatchingTest(unittest.TestCase):
    def test_full_batches_go_at_once_and_the_rest_on_flush(self):
        server = FrameServer().start()
        hook = hook_for(server, batch_max_events=5, flush_interval=30)
        try:
            self.assertTrue(wait_until(lambda: hook.stats()["state"] == "connected"))
            for i in range(12):
                hook.emit_ppo_metrics({"m": float(i)}, i)
            self.assertTrue(wait_until(lambda: len(server.frames) >= 3))
            time.sleep(0.1)
            sizes = [len(split_events(f)) for f in server.frames]
            self.assertEqual(sizes, [1, 5, 5], "hello alone, then two full batches; the last 2 wait for the interval")
            self.assertTrue(delivered(hook, server))
            sizes = [len(split_events(f)) for f in server.frames]
            self.assertEqual(sizes, [1, 5, 5, 2])
            steps = [struct.unpack_from("<d", e[2])[0] for e in server.events[1:]]
            self.assertEqual(steps, [float(i) for i in range(12)])
        finally:
            hook.close(1)
            server.stop()

    def test_batch_max_bytes_splits_frames(self):
        server = FrameServer().start()
        hook = hook_for(server, batch_max_bytes=4096, flush_interval=30)
        try:
            self.assertTrue(wait_until(lambda: hook.stats()["state"] == "connected"))
            for _ in range(4):
                hook.cache_attention_weights([0.5] * 600)  # 16 + 25 + 2400 bytes each
            self.assertTrue(delivered(hook, server))
            self.assertEqual([len(split_events(f)) for f in server.frames], [1, 1, 1, 1, 1])
        finally:
            hook.close(1)
            server.stop()


class OverflowTest(unittest.TestCase):
    def test_drops_lowest_priority_oldest_first_and_counts_per_kind(self):
        port = free_port()
        hook = rc.StreamingHook("tcp://127.0.0.1:%d" % port, queue_size=4, backoff_initial=0.05, backoff_max=0.05,
                                breaker_threshold=1000, clock=lambda: TS, flush_interval=0.01)
        server = None
        try:
            hook.emit_experience("g", "p", 0, [0.0], 1, 0.0, False)  # prio 0
            hook.cache_attention_weights([1.0])  # prio 1
            hook.emit_ppo_metrics({"m": 1.0}, 1)  # prio 3
            hook.emit_milestone("s1")  # prio 4: queue now full
            self.assertTrue(hook.emit_ppo_metrics({"m": 2.0}, 2))  # evicts the experience
            self.assertTrue(hook.emit_predictions([("7g7f", 1.0)]))  # evicts the attention
            self.assertFalse(hook.emit_board_heatmap([0.0] * 81))  # nothing lower queued: dropped itself
            self.assertTrue(hook.emit_milestone("s2"))  # evicts the policy
            st = hook.stats()
            self.assertEqual(st["queued"], 4)
            self.assertEqual(st["dropped"], {"metrics": 0, "se_attention": 1, "board_heatmap": 1, "policy": 1, "game_state": 0, "milestone": 0, "experience": 1})
            server = FrameServer(port=port).start()
            self.assertTrue(delivered(hook, server), hook.stats())
            kinds = [(e[0], e[1].get("name")) for e in server.events]
            self.assertEqual(kinds, [(16, None), (1, None), (6, "s1"), (1, None), (6, "s2")], "survivors arrive in emit order")
        finally:
            hook.close(1)
            if server:
                server.stop()

    def test_queue_bytes_bound(self):
        hook = rc.StreamingHook("tcp://127.0.0.1:%d" % free_port(), queue_bytes=10_000, backoff_initial=5, breaker_threshold=1000)
        try:
            for _ in range(10):
                hook.cache_attention_weights([0.5] * 600)  # ~2.4 kB each
            st = hook.stats()
            self.assertLessEqual(st["queued_bytes"], 10_000)
            self.assertEqual(st["queued"] + st["dropped"]["se_attention"], 10)
            self.assertGreater(st["dropped"]["se_attention"], 0)
            # Bigger than the whole queue: dropped alone, nothing evicted for it.
            self.assertFalse(hook.emit_milestone("huge", blob="x" * 20_000))
            st2 = hook.stats()
            self.assertEqual((st2["queued"], st2["dropped"]["milestone"], st2["dropped"]["se_attention"]), (st["queued"], 1, st["dropped"]["se_attention"]))
        finally:
            hook.close(0)

    def test_eviction_only_when_it_makes_room(self):
        hook = rc.StreamingHook("tcp://127.0.0.1:%d" % free_port(), queue_bytes=10_000, backoff_initial=5, breaker_threshold=1000)
        try:
            self.assertTrue(hook.emit_milestone("m", blob="x" * 6000))  # prio 4, ~6 kB
            self.assertTrue(hook.cache_attention_weights([0.5] * 600))  # prio 1, ~2.4 kB
            self.assertTrue(hook.emit_predictions([("7g7f", 0.5)], position="p" * 2000))  # prio 2: evicts the attention
            self.assertFalse(hook.cache_attention_weights([0.5] * 600))  # only higher priorities left: dropped alone
            st = hook.stats()
            self.assertEqual(st["queued"], 2)
            self.assertEqual((st["dropped"]["se_attention"], st["dropped"]["policy"], st["dropped"]["milestone"]), (2, 0, 0))
        finally:
            hook.close(0)


class ResilienceTest(unittest.TestCase):
    def test_reconnects_after_server_restart(self):
        server = FrameServer().start()
        port = server.port
        hook = hook_for(server, backoff_initial=0.05, backoff_max=0.2, breaker_cooldown=0.1, healthy_after=0.1)
        server2 = None
        try:
            hook.emit_ppo_metrics({"m": 1.0}, 1)
            self.assertTrue(delivered(hook, server))
            server.stop()
            self.assertTrue(wait_until(lambda: hook.stats()["state"] != "connected", 5), hook.stats())
            server2 = FrameServer(port=port).start()
            self.assertTrue(wait_until(lambda: hook.stats()["state"] == "connected", 5), hook.stats())
            hook.emit_ppo_metrics({"m": 3.0}, 3)
            self.assertTrue(wait_until(lambda: len(server2.events) >= 2 and server2.events[-1][0] == 1, 5))
            ev = server2.events
            self.assertEqual(ev[0][0], 16, "a new connection starts with a hello")
            self.assertEqual(struct.unpack_from("<d", ev[-1][2])[0], 3.0)
            self.assertTrue(wait_until(lambda: hook.stats()["sent"] == 2))
            self.assertEqual(hook.stats()["connects"], 2)
        finally:
            hook.close(1)
            server.stop()
            if server2:
                server2.stop()

    def test_circuit_breaker_opens_half_opens_and_closes(self):
        port = free_port()
        hook = rc.StreamingHook("tcp://127.0.0.1:%d" % port, breaker_threshold=2, backoff_initial=0.01, breaker_cooldown=0.05, backoff_max=0.1)
        server = None
        try:
            self.assertTrue(wait_until(lambda: "half-open" in hook.stats()["history"], 5), hook.stats())
            st = hook.stats()
            self.assertIn(st["breaker"], ("open", "half-open"))
            self.assertEqual(st["history"][:3], ["disconnected", "open", "half-open"])
            server = FrameServer(port=port).start()
            self.assertTrue(wait_until(lambda: hook.stats()["state"] == "connected", 5), hook.stats())
            st = hook.stats()
            self.assertEqual(st["breaker"], "closed")
            self.assertEqual(st["history"][-2:], ["half-open", "connected"], "a half-open trial that succeeds closes the breaker")
        finally:
            hook.close(1)
            if server:
                server.stop()

    def test_server_dropping_every_connection_opens_the_breaker(self):
        # A server that refuses the hello (bad token) closes at once: that must not become a reconnect storm.
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        accepted = []

        def refuse():
            while True:
                try:
                    c, _ = ls.accept()
                except OSError:
                    return
                accepted.append(1)
                c.sendall(struct.pack("<I", 16 + 25) + event_bytes(17, b'{"error":"invalid token"}'))
                c.close()

        threading.Thread(target=refuse, daemon=True).start()
        hook = rc.StreamingHook("tcp://127.0.0.1:%d" % ls.getsockname()[1], token="bad", breaker_threshold=3, backoff_initial=0.02, breaker_cooldown=0.5)
        try:
            hook.emit_milestone("kept")
            self.assertTrue(wait_until(lambda: hook.stats()["breaker"] == "open", 5), hook.stats())
            st = hook.stats()
            self.assertEqual((st["sent"], st["queued"], st["connects"]), (0, 1, 0), "a refused hello does not swallow the queue")
            t = time.monotonic()
            self.assertFalse(hook.flush(5))
            self.assertLess(time.monotonic() - t, 1.0, "flush does not wait out its timeout while the circuit is open")
            n = len(accepted)
            time.sleep(0.3)
            self.assertLessEqual(len(accepted) - n, 1, "no reconnect storm while the breaker is open")
            self.assertGreaterEqual(hook.stats()["server_errors"], 1)
            self.assertEqual(hook.stats()["last_server_error"], {"error": "invalid token"})
        finally:
            hook.close(0)
            ls.close()

    def test_server_errors_are_counted(self):
        server = FrameServer(reply="error").start()
        hook = hook_for(server)
        try:
            hook.emit_ppo_metrics({"m": 1.0}, 1)
            self.assertTrue(hook.flush(5))
            self.assertTrue(wait_until(lambda: hook.stats()["server_errors"] == 2, 5), hook.stats())
            self.assertEqual(hook.stats()["last_server_error"], {"error": "nope again"})
            self.assertEqual(hook.stats()["state"], "connected", "an Error reply does not cost the connection")
        finally:
            hook.close(1)
            server.stop()

    def test_hello_error_without_close_still_delivers(self):
        server = FrameServer(reply="hello_error").start()
        hook = hook_for(server)
        try:
            hook.emit_ppo_metrics({"m": 1.0}, 1)
            self.assertTrue(delivered(hook, server), hook.stats())
            self.assertEqual([e[0] for e in server.events], [16, 1])
            st = hook.stats()
            self.assertEqual((st["state"], st["server_errors"], st["last_server_error"]), ("connected", 1, {"error": "bad run name", "kind": "hello"}))
        finally:
            hook.close(1)
            server.stop()

    def test_never_raises_without_a_server_and_closes_promptly(self):
        missing = os.path.join(tempfile.gettempdir(), "ringcast-missing-%d.sock" % os.getpid())
        for url in ("tcp://127.0.0.1:%d" % free_port(), "unix://" + missing, "ws://127.0.0.1:%d/ingest" % free_port()):
            hook = rc.StreamingHook(url, token="t", backoff_initial=0.01, breaker_cooldown=0.02)
            bad_inputs = [
                lambda: hook.emit_ppo_metrics(None, 1),
                lambda: hook.emit_ppo_metrics({"a": 1.0}, -1),
                lambda: hook.emit_ppo_metrics({"": 1.0}, 1),
                lambda: hook.emit_predictions(None),
                lambda: hook.emit_predictions([("7g7f", float("nan"))]),
                lambda: hook.cache_attention_weights("not a tensor"),
                lambda: hook.cache_attention_weights([[1.0, 2.0], [3.0]]),
                lambda: hook.cache_attention_weights([float("inf")]),
                lambda: hook.emit_board_heatmap([1.0] * 80),
                lambda: hook.emit_experience("g", "p", 0, [], 0, 0.0, False),
                lambda: hook.emit_game_state("g", moves=5),
                lambda: hook.emit_milestone("m", huge="x" * 70000),
                lambda: hook.emit_event("nope"),
            ]
            for call in bad_inputs:
                self.assertFalse(call())
            self.assertTrue(hook.emit_ppo_metrics({"a": 1.0}, 1))
            self.assertTrue(hook.emit_milestone("ok"))
            time.sleep(0.1)
            st = hook.stats()
            self.assertNotEqual(st["state"], "connected")
            self.assertEqual(sum(st["invalid"].values()), len(bad_inputs))
            self.assertEqual(st["queued"], 2)
            t = time.monotonic()
            hook.close(timeout=2)
            self.assertLess(time.monotonic() - t, 1.0, "close does not wait out a backoff when the server is away")
            st = hook.stats()
            self.assertEqual(st["state"], "closed")
            self.assertEqual(st["dropped"]["metrics"] + st["dropped"]["milestone"], 2, "undeliverable events are counted")
            self.assertFalse(hook.emit_ppo_metrics({"a": 1.0}, 2), "emit after close is a counted drop, not an error")

    def test_bad_url_is_a_constructor_error(self):
        with self.assertRaises(ValueError):
            rc.StreamingHook("http://127.0.0.1:1/")
        with self.assertRaises(ValueError):
            rc.StreamingHook("tcp://127.0.0.1")


class DeliveryTest(unittest.TestCase):
    """Per-frame acks: what a dying connection swallowed is sent again, never silently lost."""

    def run_stream(self, fail_after, n=40, **kw):
        server = FrameServer(frame_acks=True, fail_after=fail_after).start()
        hook = hook_for(server, batch_max_events=1, backoff_initial=0.05, **kw)
        try:
            for step in range(1, n + 1):
                self.assertTrue(hook.emit_ppo_metrics({"loss": step}, step))
                time.sleep(0.002)
            self.assertTrue(hook.flush(10), hook.stats())
            st = hook.stats()
        finally:
            hook.close(timeout=1)
            server.stop()
        steps = [struct.unpack_from("<d", e[2])[0] for e in server.events if e[0] == 1]
        swallowed = [struct.unpack_from("<d", e[2])[0] for f in server.swallowed for e in split_events(f) if e[0] == 1]
        return st, steps, swallowed

    def assert_all_delivered(self, st, steps, swallowed, n=40):
        self.assertTrue(swallowed, "the server swallowed nothing: the test proves nothing")
        self.assertEqual(sorted(set(steps)), list(range(1, n + 1)), st)  # every step arrived, swallowed ones again
        self.assertEqual(st["lost"], 0)
        self.assertEqual(st["unacked"], 0)
        self.assertEqual(st["delivered"], n)
        self.assertGreaterEqual(st["resent"], len(swallowed))
        self.assertEqual(st["connects"], 2)

    def test_frames_a_dead_connection_never_acknowledged_are_resent(self):
        self.assert_all_delivered(*self.run_stream((5, 3, True)))

    def test_a_server_that_stops_acking_is_left_and_its_frames_resent(self):
        # No close, no EOF: only the missing acks tell; send_timeout bounds the wait.
        self.assert_all_delivered(*self.run_stream((5, 3, False), send_timeout=0.5))

    def test_what_close_cannot_confirm_is_counted_lost(self):
        server = FrameServer(frame_acks=True, fail_after=(2, 1000, False)).start()
        hook = hook_for(server, batch_max_events=1)
        try:
            for step in range(1, 11):
                hook.emit_ppo_metrics({"loss": step}, step)
            self.assertTrue(wait_until(lambda: len(server.swallowed) == 8), hook.stats())
        finally:
            hook.close(timeout=0.3)
            server.stop()
        st = hook.stats()
        self.assertEqual(st["delivered"], 2)
        self.assertEqual(st["lost"] + sum(st["dropped"].values()), 8, st)
        self.assertEqual(st["unacked"], 0)


def metrics_steps(events):
    """(step, meta, timestamp) of every metrics event, in arrival order."""
    return [(struct.unpack_from("<d", e[2])[0], e[1], HDR.unpack_from(e[3], 0)[4]) for e in events if e[0] == 1]


class SpoolTest(unittest.TestCase):
    """spool_dir: what the trainer emits while the server is away goes to disk, and is sent,
    marked late with its original step and time, once the server is back."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rc-spool-")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.dir, ignore_errors=True))
        self.step = 0

    def hook(self, port, **kw):
        kw.setdefault("backoff_initial", 0.05)
        kw.setdefault("backoff_max", 0.2)
        kw.setdefault("breaker_cooldown", 0.1)
        kw.setdefault("healthy_after", 0.1)
        kw.setdefault("flush_interval", 0.01)
        # The event for step s carries the time 1e12 + s (emit() sets self.step first).
        kw.setdefault("clock", lambda: 1e12 + self.step)
        return rc.StreamingHook("tcp://127.0.0.1:%d" % port, token="tok-12345", run="r1", spool_dir=self.dir, **kw)

    def test_an_outage_is_spooled_and_sent_late_in_order_once_the_server_is_back(self):
        server = FrameServer(frame_acks=True).start()
        port = server.port
        hook = self.hook(port)
        server2 = None
        try:
            for step in range(1, 11):
                hook.emit_ppo_metrics({"loss": step}, step)
            self.assertTrue(hook.flush(5), hook.stats())
            server.stop()
            for step in range(11, 41):
                self.step = step
                hook.emit_ppo_metrics({"loss": step}, step)
                time.sleep(0.01)
            self.assertTrue(wait_until(lambda: hook.stats()["spooled"] == 30, 5), hook.stats())
            self.assertEqual(sum(hook.stats()["dropped"].values()), 0)
            self.assertTrue(os.listdir(self.dir), "nothing on disk")
            server2 = FrameServer(port=port, frame_acks=True).start()
            self.assertTrue(wait_until(lambda: hook.stats()["state"] == "connected", 5), hook.stats())
            for step in range(41, 51):
                hook.emit_ppo_metrics({"loss": step}, step)
            self.assertTrue(wait_until(lambda: hook.stats()["spool_backlog"] == 0 and hook.stats()["sent_from_spool"] == 30, 10), hook.stats())
            self.assertTrue(hook.flush(5))
            st = hook.stats()
        finally:
            hook.close(1)
            server.stop()
            if server2:
                server2.stop()
        first = metrics_steps(server.events)
        second = metrics_steps(server2.events)
        self.assertEqual([s for s, _, _ in first], list(range(1, 11)))
        self.assertTrue(all("late" not in m for _, m, _ in first))
        late = [(s, m, ts) for s, m, ts in second if m.get("late") is True]
        live = [s for s, m, _ in second if "late" not in m]
        self.assertEqual([s for s, _, _ in late], list(range(11, 41)), "spooled steps, in order, each once")
        self.assertEqual(live, list(range(41, 51)))
        self.assertEqual([ts for _, _, ts in late], [1e12 + s for s, _, _ in late], "each keeps its original time")
        self.assertEqual([m["backlog"] for _, m, _ in late], list(range(29, -1, -1)), "backlog counts down to 0")
        self.assertEqual((st["spooled"], st["sent_from_spool"], st["dropped_oldest"], st["lost"]), (30, 30, 0, 0), st)

    def test_past_the_bound_the_oldest_go_first_counted(self):
        port = free_port()  # nobody listens yet
        hook = self.hook(port, spool_max_bytes=64 << 10)
        n = 300
        wide = {"metric_%03d" % i: float(i) for i in range(40)}  # ~800 bytes per event
        server = None
        try:
            for step in range(1, n + 1):
                hook.emit_ppo_metrics(wide, step)
                if step % 50 == 0:
                    time.sleep(0.2)  # let the sender move them to disk
            self.assertTrue(wait_until(lambda: hook.stats()["spooled"] == n, 5), hook.stats())
            st = hook.stats()
            self.assertGreater(st["dropped_oldest"], 0, st)
            self.assertLessEqual(st["spool_bytes"], 64 << 10)
            self.assertEqual(st["spool_backlog"], n - st["dropped_oldest"])
            server = FrameServer(port=port, frame_acks=True).start()
            self.assertTrue(wait_until(lambda: hook.stats()["spool_backlog"] == 0, 10), hook.stats())
        finally:
            hook.close(1)
            if server:
                server.stop()
        steps = [s for s, _, _ in metrics_steps(server.events)]
        self.assertEqual(steps, list(range(st["dropped_oldest"] + 1, n + 1)), "the newest survive, in order")

    def test_a_restarted_trainer_sends_what_the_last_one_spooled(self):
        port = free_port()
        hook = self.hook(port)
        for step in range(1, 21):
            hook.emit_ppo_metrics({"loss": step}, step)
        hook.close(0.5)  # server away: queued events go to the spool, not to "dropped"
        st = hook.stats()
        self.assertEqual((st["spooled"], sum(st["dropped"].values())), (20, 0), st)
        server = FrameServer(port=port, frame_acks=True).start()
        hook2 = self.hook(port)
        try:
            self.assertTrue(wait_until(lambda: hook2.stats()["sent_from_spool"] == 20, 10), hook2.stats())
            hook2.emit_ppo_metrics({"loss": 21}, 21)
            self.assertTrue(hook2.flush(5))
        finally:
            hook2.close(1)
            server.stop()
        got = metrics_steps(server.events)
        self.assertEqual([s for s, m, _ in got if m.get("late")], list(range(1, 21)))
        self.assertEqual([s for s, m, _ in got if not m.get("late")], [21])
        # A third start finds nothing left to send.
        self.assertEqual(rc._Spool(self.dir, 1 << 20).pending, 0)

    def test_a_torn_record_is_skipped_and_the_rest_kept(self):
        port = free_port()
        hook = self.hook(port)
        for step in range(1, 11):
            hook.emit_ppo_metrics({"loss": step}, step)
        hook.close(0.5)
        self.assertEqual(hook.stats()["spooled"], 10)
        segs = sorted(f for f in os.listdir(self.dir) if f.endswith(".rcspool"))
        self.assertEqual(len(segs), 1)
        path = os.path.join(self.dir, segs[0])
        with open(path, "rb") as f:
            data = bytearray(f.read())
        # Damage record 4 (a flipped byte: its CRC fails), and leave half a record at the end:
        # what a trainer killed in the middle of a write leaves behind.
        off = 0
        for _ in range(3):
            off += 12 + struct.unpack_from("<I", data, off + 4)[0]
        data[off + 12 + 20] ^= 0xFF
        record = data[:12 + struct.unpack_from("<I", data, 4)[0]]
        data += record[: len(record) // 2]
        with open(path, "wb") as f:
            f.write(bytes(data))
        server = FrameServer(port=port, frame_acks=True).start()
        hook2 = self.hook(port)
        try:
            self.assertTrue(wait_until(lambda: hook2.stats()["sent_from_spool"] == 9, 10), hook2.stats())
            st = hook2.stats()
        finally:
            hook2.close(1)
            server.stop()
        self.assertEqual(st["spool_torn"], 2, st)
        self.assertEqual([s for s, _, _ in metrics_steps(server.events)], [1, 2, 3, 5, 6, 7, 8, 9, 10])

    def test_one_process_per_spool_directory(self):
        first = rc._Spool(self.dir, 1 << 20)
        with self.assertRaisesRegex(OSError, "in use by process %d" % os.getpid()):
            rc._Spool(self.dir, 1 << 20)
        first.close()
        # A lock left by a process that is gone (killed before close) is taken over.
        import subprocess

        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        with open(os.path.join(self.dir, "lock"), "w") as f:
            f.write("%d\n" % gone.pid)
        rc._Spool(self.dir, 1 << 20).close()

    def test_emit_never_touches_the_disk(self):
        # An unwritable spool directory: the hook still works from memory, the problem is reported.
        blocker = os.path.join(self.dir, "file")
        open(blocker, "w").close()
        hook = rc.StreamingHook("tcp://127.0.0.1:%d" % free_port(), spool_dir=os.path.join(blocker, "spool"))
        try:
            self.assertTrue(hook.emit_ppo_metrics({"loss": 1.0}, 1))
            self.assertTrue(wait_until(lambda: hook.stats()["spool_error"] is not None, 5))
        finally:
            hook.close(0.2)


class CriticalTest(unittest.TestCase):
    """Milestones and finished games go out at once, whatever flush_interval says."""

    def setUp(self):
        self.server = FrameServer().start()
        self.hook = hook_for(self.server, flush_interval=2.0)
        self.assertTrue(wait_until(lambda: self.hook.stats()["acks"] >= 1))

    def tearDown(self):
        self.hook.close(timeout=1)
        self.server.stop()

    def arrival(self, kind):
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: any(e[0] == kind for e in self.server.events), timeout=3.0))
        return time.monotonic() - t0

    def test_a_milestone_skips_the_linger(self):
        self.hook.emit_ppo_metrics({"loss": 1}, 1)  # lingers...
        time.sleep(0.05)
        self.hook.emit_milestone("first_win", step=1)  # ...until this one needs to go
        self.assertLess(self.arrival(6), 1.0)
        self.assertTrue(any(e[0] == 1 for e in self.server.events))  # the metrics went in the same frame

    def test_a_game_result_skips_the_linger_a_move_does_not(self):
        self.hook.emit_game_state("g1", moves=["7g7f"])
        time.sleep(0.5)
        self.assertFalse(any(e[0] == 5 for e in self.server.events), "a plain move should linger")
        self.hook.emit_game_state("g1", moves=["7g7f"], result="win")
        self.assertLess(self.arrival(5), 1.0)


class LatencyTest(unittest.TestCase):
    def test_emit_is_microseconds(self):
        server = FrameServer().start()
        hook = hook_for(server, queue_size=100_000)
        metrics = {"ppo/policy_loss": 0.1, "ppo/value_loss": 0.2, "ppo/entropy": 1.5, "ppo/kl_divergence_approx": 0.01,
                   "ppo/clip_fraction": 0.1, "ppo/learning_rate": 3e-4, "gradient_norm": 0.5, "explained_variance": 0.9}
        weights = [[0.5] * 256 for _ in range(9)]
        try:
            times = []
            for i in range(2000):
                t0 = time.perf_counter_ns()
                hook.emit_ppo_metrics(metrics, i)
                times.append(time.perf_counter_ns() - t0)
            times.sort()
            median_us = times[len(times) // 2] / 1000
            # ~5 us on an idle core; generous bound because the test machine is shared.
            self.assertLess(median_us, 100, "median emit_ppo_metrics %.1f us" % median_us)
            t0 = time.perf_counter_ns()
            for i in range(100):
                hook.cache_attention_weights(weights, step=i)
            per_call = (time.perf_counter_ns() - t0) / 100 / 1000
            self.assertLess(per_call, 2000, "pure-Python 9x256 attention %.0f us" % per_call)
            self.assertTrue(hook.flush(10))
            self.assertEqual(hook.stats()["sent"], 2100)
        finally:
            hook.close(1)
            server.stop()


class WebSocketTest(unittest.TestCase):
    def test_masked_binary_frames_auth_header_and_ping(self):
        server = FrameServer(ws=True, ping=True).start()
        hook = hook_for(server)
        try:
            hook.emit_ppo_metrics({"m": 1.0}, 1)
            hook.cache_attention_weights([0.25] * 300)  # > 125 bytes: 16-bit length form
            self.assertTrue(delivered(hook, server))
            kinds = [e[0] for e in server.events]
            self.assertEqual(kinds, [16, 1, 2])
            self.assertEqual(server.request_headers["authorization"], "Bearer tok-12345")
            self.assertEqual(server.events[2][2], struct.pack("<300f", *([0.25] * 300)))
            self.assertTrue(wait_until(lambda: server.pongs == [b"ping"], 5), "ping answered with a pong")
            self.assertTrue(wait_until(lambda: hook.stats()["acks"] >= 1))
        finally:
            hook.close(1)
            server.stop()

    def test_wrong_accept_key_is_refused(self):
        server = FrameServer(ws=True, bad_accept=True).start()
        hook = hook_for(server, backoff_initial=0.01, breaker_threshold=2, breaker_cooldown=0.05)
        try:
            self.assertTrue(wait_until(lambda: hook.stats()["breaker"] != "closed", 5))
            self.assertEqual(hook.stats()["connects"], 0)
            self.assertEqual(server.frames, [])
        finally:
            hook.close(0)
            server.stop()


if __name__ == "__main__":
    unittest.main()
