"""ringcast_client: stream live training telemetry from a Python trainer to ringcast.

Standard library only. numpy and torch are used when the caller hands them in (a tensor
is converted with ``.detach().cpu().numpy()``, an ndarray through the buffer protocol);
the producer side never imports either. ``ExperienceConsumer`` (the RL side of
``/experience``, at the end of this file) imports numpy when it is installed, to give
states as ndarrays. Hook a PPO ``learn()`` call like this::

    from ringcast_client import StreamingHook

    hook = StreamingHook("tcp://127.0.0.1:8081", token=os.environ["RINGCAST_INGEST_TOKEN"], run="keisei-7")
    for update in range(num_updates):
        collect_rollouts(env, agent, buffer)
        metrics = agent.learn(buffer)                 # {"ppo/kl_divergence_approx": ..., ...}
        hook.emit_ppo_metrics(metrics, global_step)   # returns in microseconds, never raises
        hook.cache_attention_weights(agent.model.se_weights())   # [blocks][channels]
        global_step += steps_per_update
    hook.close()

Every ``emit_*`` encodes one event (the binary format of ringcast's
``src/shared/telemetry/event-codec.ts``) and appends it to a bounded in-memory queue; a
daemon thread batches queued events into frames and sends them. The training loop is
never blocked and never sees an exception: bad input is counted in ``stats()['invalid']``,
an overflowing queue drops the lowest-priority oldest events first (counted per kind in
``stats()['dropped']``), and an unreachable server opens a circuit breaker that retries
with exponential backoff and jitter while events keep queueing (bounded).

Delivery: the hello asks the server to acknowledge every frame once its events are safe
in the server's ring. Frames a lost connection swallowed (no ack) are sent again on the
next connection, so nothing is lost silently; a frame whose ack was lost may then arrive
twice (at-least-once). What cannot be confirmed before close() gives up is counted in
``stats()['lost']``. Against a server without acks, a dying connection can take written
frames with it unnoticed. Critical events (milestones, finished games) skip the
``flush_interval`` linger and go out at once.

Offline spool: with ``spool_dir=PATH`` what the trainer emits while the server is unreachable
goes to bounded segment files there instead of waiting in memory; once connected it is sent,
marked late with its original step and time, rate-limited, in the gaps between live frames.
A spool left by a closed or killed process is sent by the next hook on that directory.

URLs: ``ws://host:port/ingest`` (``wss://`` too), ``tcp://host:port``, ``unix:///path``.
"""

import atexit
import base64
import collections
import hashlib
import json
import logging
import os
import random
import socket
import struct
import sys
import threading
import time
import weakref
import zlib
from array import array
from urllib.parse import urlsplit

__all__ = ["StreamingHook", "ExperienceConsumer", "ExperienceBatch", "Experience", "InvalidEvent", "KIND", "PRIORITY", "encode_event", "encode_metrics_payload"]
__version__ = "0.1.0"

log = logging.getLogger("ringcast_client")
log.addHandler(logging.NullHandler())  # library convention: the application decides where logs go

# ─────────────────────────────── wire format ───────────────────────────────

MAGIC = 0x52
KIND = {
    "metrics": 1,
    "se_attention": 2,
    "board_heatmap": 3,
    "policy": 4,
    "game_state": 5,
    "milestone": 6,
    "experience": 7,
    "hello": 16,
    "error": 17,
    "ack": 18,
}
KIND_NAME = {v: k for k, v in KIND.items()}
TELEMETRY_KINDS = ("metrics", "se_attention", "board_heatmap", "policy", "game_state", "milestone", "experience")
# Higher survives overflow longer (same table as src/sdk/types.ts EVENT_PRIORITY).
PRIORITY = {
    "experience": 0,
    "se_attention": 1,
    "board_heatmap": 1,
    "policy": 2,
    "metrics": 3,
    "game_state": 3,
    "milestone": 4,
}
_PRIO_BY_KIND = {KIND[k]: p for k, p in PRIORITY.items()}
_LEVELS = 5
# Frames written and not yet acknowledged before the sender waits for acks: bounds what a
# dead connection can hold (and what is resent) without slowing a healthy one down.
_MAX_UNACKED_FRAMES = 64

# Precomputed formats: struct.Struct parses the format once, pack() is then a single C call.
_HEADER = struct.Struct("<BBHId")  # magic, kind, metaLen, payloadLen, timestamp ms
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_METRICS_HEAD = struct.Struct("<dH")  # step, count
_WS_LEN16 = struct.Struct("!H")
_WS_LEN64 = struct.Struct("!Q")
_HEADER_BYTES = 16
MAX_META_BYTES = 0xFFFF
MAX_FRAME_BYTES = 16 << 20  # the server's default ingest.maxFrameBytes
_INF = float("inf")
_LITTLE = sys.byteorder == "little"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class InvalidEvent(ValueError):
    """Input this client cannot turn into a valid event (counted, never raised to callers of emit_*)."""


def _json_default(obj):
    # numpy / torch scalars and arrays, sets: anything with an obvious JSON shape.
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "ndim", 0) == 0:
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    return str(obj)


_json_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default).encode


def _finite_or_none(value):
    """JSON has no NaN/Infinity and the server's JSON.parse rejects them: send null instead."""
    if isinstance(value, float):
        return value if value - value == 0.0 else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _meta_bytes(meta):
    if not meta:
        return b""
    try:
        text = _json_encode(meta)
    except ValueError:
        text = _json_encode(_finite_or_none(json.loads(json.dumps(meta, default=_json_default))))
    data = text.encode("utf-8")
    if len(data) > MAX_META_BYTES:
        raise InvalidEvent("event meta is %d bytes of JSON; the limit is %d" % (len(data), MAX_META_BYTES))
    return data


def encode_event(kind, meta=None, payload=b"", timestamp_ms=None):
    """One event: 16-byte header, UTF-8 JSON meta, binary payload. Returns bytes."""
    mb = _meta_bytes(meta)
    ts = time.time() * 1000.0 if timestamp_ms is None else float(timestamp_ms)
    return b"".join((_HEADER.pack(MAGIC, kind, len(mb), len(payload), ts), mb, payload))


_name_cache = {}


def _name_prefix(name):
    """u8 length + UTF-8 bytes of a metric name; names repeat every step, so cache (bounded)."""
    prefix = _name_cache.get(name)
    if prefix is None:
        raw = (name if isinstance(name, str) else str(name)).encode("utf-8")
        if not 0 < len(raw) <= 255:
            raise InvalidEvent("metric names must be 1-255 UTF-8 bytes, got %r" % (name,))
        prefix = bytes((len(raw),)) + raw
        if len(_name_cache) < 4096:
            _name_cache[name] = prefix
    return prefix


def encode_metrics_payload(step, metrics):
    """Binary metrics payload: f64 step | u16 count | count x (u8 nameLen | name | f64 value).

    Returns (payload, skipped): values that are not finite numbers are skipped, because
    the wire format (and every chart downstream) only holds finite numbers.
    """
    step = float(step)
    if not (step >= 0.0 and step - step == 0.0):
        raise InvalidEvent("global_step must be a finite, non-negative number, got %r" % (step,))
    parts = [b""]
    skipped = 0
    pack = _F64.pack
    for name, value in metrics.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            skipped += 1
            continue
        if value - value != 0.0:  # NaN or +-inf
            skipped += 1
            continue
        parts.append(_name_prefix(name))
        parts.append(pack(value))
    count = (len(parts) - 1) // 2
    if count == 0:
        raise InvalidEvent("no finite metric values to send (%d skipped)" % skipped)
    if count > 0xFFFF:
        raise InvalidEvent("too many metrics in one event (%d; the limit is 65535)" % count)
    parts[0] = _METRICS_HEAD.pack(step, count)
    return b"".join(parts), skipped


def _is_seq(x):
    return isinstance(x, (list, tuple, array)) or (hasattr(x, "__len__") and hasattr(x, "__getitem__") and not isinstance(x, (str, bytes, bytearray, dict)))


def _as_float32(x, max_dims=2):
    """Tensor-like input -> (little-endian float32 buffer, shape tuple).

    ndarray / torch tensor: one contiguous float32 copy through numpy (already imported by
    the caller, so this module never imports it). Plain (nested) sequences: array('f').
    Rejects non-finite values, which the server would reject anyway.
    """
    mod = type(x).__module__
    if mod.startswith("torch"):
        # .float() first: numpy has no bfloat16, and the wire wants float32 anyway.
        x = x.detach().float().cpu().numpy()
        mod = type(x).__module__
    np = sys.modules.get("numpy") if mod.startswith("numpy") or hasattr(x, "__array_interface__") else None
    if np is not None:
        a = np.ascontiguousarray(x, dtype="<f4")
        if a.ndim == 0 or a.ndim > max_dims:
            raise InvalidEvent("expected a tensor of 1-%d dimensions, got shape %s" % (max_dims, a.shape))
        if a.size == 0:
            raise InvalidEvent("empty tensor")
        total = float(a.sum(dtype=np.float64))  # finite iff every value is (see below)
        if total - total != 0.0:
            raise InvalidEvent("tensor holds NaN or infinite values")
        return memoryview(a).cast("B"), tuple(int(d) for d in a.shape)
    if isinstance(x, array) and x.typecode == "f":
        flat, shape = x, (len(x),)
    else:
        if not _is_seq(x) or len(x) == 0:
            raise InvalidEvent("expected a non-empty sequence of numbers, got %s" % type(x).__name__)
        shape = []
        probe = x
        while _is_seq(probe):
            if len(probe) == 0:
                raise InvalidEvent("empty dimension in nested sequence")
            shape.append(len(probe))
            probe = probe[0]
        if len(shape) > max_dims:
            raise InvalidEvent("expected 1-%d dimensions, got %d" % (max_dims, len(shape)))
        flat = array("f")
        _flatten_into(flat, x, shape, 0)
        shape = tuple(shape)
    total = sum(flat)  # float32 values cannot overflow a float64 sum: finite iff all finite
    if total - total != 0.0:
        raise InvalidEvent("tensor holds NaN or infinite values")
    if not _LITTLE:
        flat = array("f", flat)
        flat.byteswap()
    return memoryview(flat).cast("B"), shape


def _flatten_into(out, x, shape, depth):
    if len(x) != shape[depth]:
        raise InvalidEvent("ragged nested sequence: dimension %d has lengths %d and %d" % (depth, shape[depth], len(x)))
    if depth == len(shape) - 1:
        out.extend(x if isinstance(x, array) else array("f", x))
        return
    for row in x:
        _flatten_into(out, row, shape, depth + 1)


def _pack_mask(mask):
    """Legal-action mask -> (bitset bytes, count): bit i is byte i>>3, bit i&7 (LSB first)."""
    mod = type(mask).__module__
    if mod.startswith("torch"):
        mask = mask.detach().cpu().numpy()
        mod = type(mask).__module__
    np = sys.modules.get("numpy") if mod.startswith("numpy") else None
    if np is not None:
        m = np.asarray(mask).reshape(-1).astype(bool)
        return np.packbits(m, bitorder="little").tobytes(), int(m.size)
    bits = bytearray((len(mask) + 7) >> 3)
    for i, v in enumerate(mask):
        if v:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits), len(mask)


def _scalar(v):
    return v.item() if hasattr(v, "item") and callable(v.item) else v


def _put_number(meta, key, v):
    """meta[key] = v as a JSON number; a NaN step or value is left out rather than losing the event."""
    if v is None:
        return
    v = float(_scalar(v))
    if v - v != 0.0:
        return
    meta[key] = int(v) if key == "step" and v.is_integer() else v


# ─────────────────────────────── transports ───────────────────────────────


class _Connection:
    """One open socket to the server, TCP/Unix (u32 LE length prefix) or WebSocket."""

    def __init__(self, sock, ws, leftover=b""):
        self.sock = sock
        self.ws = ws
        self.buf = bytearray(leftover)
        self.send_lock = threading.Lock()
        self.dead = False
        self.opened = time.monotonic()
        self.acked = False
        # Set by the reader at the server's first answer to the hello (Ack or Error) or at EOF.
        self.answered = threading.Event()
        self.refusal = None
        self.eof = threading.Event()
        # Per-frame acks (when the server's hello Ack says it sends them): frames written and
        # not yet acknowledged, as (frame number, events, their priority levels), oldest first.
        # Frames are numbered as the server counts them: every frame after the hello.
        self.frame_acks = False
        self.frames_sent = 0
        self.unacked = collections.deque()
        # Frames sent from the spool and not yet acknowledged: (frame number, segment, end offset, events).
        self.spool_unacked = collections.deque()
        self.ack_progress = time.monotonic()

    def send_frame(self, events):
        if self.ws:
            self._ws_send(0x2, b"".join(events))
        else:
            data = b"".join([_U32.pack(sum(len(e) for e in events))] + list(events))
            with self.send_lock:
                self.sock.sendall(data)

    def _ws_send(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = bytes((0x80 | opcode, 0x80 | 126)) + _WS_LEN16.pack(n)
        else:
            head = bytes((0x80 | opcode, 0x80 | 127)) + _WS_LEN64.pack(n)
        key = os.urandom(4)
        with self.send_lock:
            self.sock.sendall(head + key + _ws_mask(payload, key))

    def close(self, graceful):
        self.dead = True
        try:
            if graceful and self.ws:
                self._ws_send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # Reading (server -> producer). Returns bytes of one ringcast frame, or None at EOF.
    def _recv_exact(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except socket.timeout:
                if self.dead:
                    return None
                continue
            if not chunk:
                return None
            self.buf += chunk
        with memoryview(self.buf) as view:
            out = bytes(view[:n])  # one copy (a bytearray slice would make two)
        del self.buf[:n]
        return out

    def read_frame(self, max_bytes):
        if not self.ws:
            head = self._recv_exact(4)
            if head is None:
                return None
            (n,) = _U32.unpack(head)
            if n > max_bytes:
                raise ConnectionError("server frame of %d bytes exceeds %d" % (n, max_bytes))
            return self._recv_exact(n)
        while True:
            msg = _read_message(self, max_bytes)
            if msg is None:
                return None
            is_text, data = msg
            if not is_text:  # text messages are not ringcast frames
                return data


def _ws_mask(data, key):
    """XOR with the 4-byte key, done as one big-integer XOR (C speed, no Python loop)."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def _parse_url(url):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise ValueError("unix URL needs a socket path: unix:///path/to/ingest.sock")
        return {"scheme": "unix", "path": path}
    if scheme in ("tcp", "ws", "wss"):
        if not parts.hostname or parts.port is None:
            raise ValueError("%s URL needs host and port: %s://host:port%s" % (scheme, scheme, "/ingest" if scheme != "tcp" else ""))
        target = {"scheme": scheme, "host": parts.hostname, "port": parts.port}
        if scheme != "tcp":
            target["path"] = (parts.path or "/ingest") + ("?" + parts.query if parts.query else "")
        return target
    raise ValueError("unsupported URL %r: use ws://host:port/ingest, tcp://host:port or unix:///path" % (url,))


def _open(target, token, timeout):
    if target["scheme"] == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(target["path"])
        except BaseException:
            sock.close()
            raise
        return _Connection(sock, ws=False)
    sock = socket.create_connection((target["host"], target["port"]), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target["scheme"] == "tcp":
            return _Connection(sock, ws=False)
        if target["scheme"] == "wss":
            import ssl  # stdlib; only needed for wss://

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target["host"])
        leftover = _ws_handshake(sock, target, token)
        return _Connection(sock, ws=True, leftover=leftover)
    except BaseException:
        sock.close()
        raise


def _ws_handshake(sock, target, token):
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    host = target["host"] if ":" not in target["host"] else "[%s]" % target["host"]
    lines = [
        "GET %s HTTP/1.1" % target["path"],
        "Host: %s:%d" % (host, target["port"]),
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key,
        "Sec-WebSocket-Version: 13",
        "User-Agent: ringcast-python/" + __version__,
    ]
    if token:
        lines.append("Authorization: Bearer " + token)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection during the WebSocket handshake")
        data += chunk
        if len(data) > 16384:
            raise ConnectionError("WebSocket handshake response headers exceed 16 KiB")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        # The body says why (e.g. which query parameter was wrong); it may be cut short.
        body = rest[:1024].decode("utf-8", "replace").strip()
        raise ConnectionError("WebSocket upgrade refused: %s%s" % (lines[0], (" " + body) if body else ""))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    expected = base64.b64encode(hashlib.sha1(key.encode("ascii") + _WS_GUID).digest()).decode("ascii")
    if headers.get("sec-websocket-accept") != expected:
        raise ConnectionError("WebSocket handshake: bad Sec-WebSocket-Accept (not a WebSocket server?)")
    if headers.get("upgrade", "").lower() != "websocket":
        raise ConnectionError("WebSocket handshake: response lacks Upgrade: websocket")
    return rest


# ─────────────────────────────── offline spool ───────────────────────────────
#
# While the server is away, events go to disk instead of being dropped, and are sent again
# once it is back. Layout of spool_dir: segment files "<16 digits>.rcspool" written in
# order, each a run of records
#
#     4 bytes  magic b"RCS1"
#     u32 LE   event length
#     u32 LE   CRC-32 of the event bytes
#     ...      the encoded event, exactly as emitted (its timestamp is the emit time)
#
# and "cursor" (text "<segment> <offset>"): where the first record the server has not yet
# acknowledged starts; "lock" holds the pid of the process using the directory (two producers
# on one spool would corrupt each other's segments; a lock whose process is gone is taken over). A trainer killed mid-write leaves a torn record: it fails its length
# or CRC check and is skipped (the reader resynchronises on the next magic); every whole
# record before and after it is kept. A new process always writes a new segment, so a torn
# tail is never written after. The cursor is rewritten after every acknowledged frame
# without fsync: losing it means frames are sent twice, never lost (at-least-once).

_SPOOL_RECORD = struct.Struct("<4sII")
_SPOOL_MAGIC = b"RCS1"
_SPOOL_RECORD_BYTES = 12
_SPOOL_SUFFIX = ".rcspool"


class _Segment(object):
    __slots__ = ("number", "size", "records")

    def __init__(self, number, size, records):
        self.number = number
        self.size = size
        self.records = records  # records not yet acknowledged by the server


class _Spool(object):
    """Bounded on-disk FIFO of encoded events (layout above). Written and read by the sender
    thread; commit() comes from the reader thread (acks), hence the lock."""

    def __init__(self, path, max_bytes, fsync_interval=1.0):
        self.path = os.path.abspath(path)
        self.max_bytes = max(64 << 10, int(max_bytes))
        # Eight segments to the bound: dropping the oldest frees at most an eighth of the spool.
        self.segment_bytes = max(8 << 10, min(4 << 20, self.max_bytes // 8))
        self.fsync_interval = float(fsync_interval)
        self.lock = threading.Lock()
        self.segments = []
        self.pending = 0  # records not yet acknowledged
        self.inflight = 0  # of those, records sent and awaiting their ack
        self.bytes = 0
        self.spooled = 0
        self.sent = 0
        self.dropped_oldest = 0
        self.torn = 0
        self._fd = None
        self._read_fd = None
        self._read_number = None
        self._dirty = False
        self._synced = time.monotonic()
        os.makedirs(self.path, exist_ok=True)
        self._lock_path = os.path.join(self.path, "lock")
        self._take_lock()
        try:
            self._load()
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self):
        for _ in range(2):
            try:
                fd = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    with open(self._lock_path) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid > 0 and _pid_alive(pid):
                    raise OSError("spool directory %s is in use by process %d" % (self.path, pid))
                try:
                    os.unlink(self._lock_path)  # left by a process that is gone
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write("%d\n" % os.getpid())
            return
        raise OSError("could not take the lock of spool directory %s" % self.path)

    def _release_lock(self):
        try:
            os.unlink(self._lock_path)
        except OSError:
            pass

    # ── files ──
    def _file(self, number):
        return os.path.join(self.path, "%016d%s" % (number, _SPOOL_SUFFIX))

    def _load(self):
        numbers = sorted(int(n[:16]) for n in os.listdir(self.path) if len(n) == 16 + len(_SPOOL_SUFFIX) and n.endswith(_SPOOL_SUFFIX) and n[:16].isdigit())
        cur_number, cur_offset = self._read_cursor()
        for number in numbers:
            if number < cur_number:
                self._unlink(number)  # acknowledged before the last exit
                continue
            with open(self._file(number), "rb") as f:
                data = f.read()  # a segment is a few MiB: one read, then parsed in memory
            size = len(data)
            start = cur_offset if number == cur_number and cur_offset <= size else 0
            records, torn = _count_records(data, start)
            self.torn += torn
            if records == 0:
                self._unlink(number)  # nothing left to send in it
                continue
            if not self.segments:
                cur_number, cur_offset = number, start
            self.segments.append(_Segment(number, size, records))
            self.pending += records
            self.bytes += size
        if not self.segments:
            cur_number, cur_offset = 0, 0
        self._committed = (cur_number, cur_offset)
        self._send = self._committed

    def _read_cursor(self):
        try:
            with open(os.path.join(self.path, "cursor")) as f:
                number, offset = f.read().split()
            return int(number), int(offset)
        except (OSError, ValueError):
            return 0, 0  # no cursor (or a damaged one): read every segment from its start

    def _write_cursor(self):
        tmp = os.path.join(self.path, "cursor.tmp")
        with open(tmp, "w") as f:
            f.write("%d %d\n" % self._committed)
        os.replace(tmp, os.path.join(self.path, "cursor"))

    def _unlink(self, number):
        if self._read_number == number:
            os.close(self._read_fd)
            self._read_fd = self._read_number = None
        try:
            os.unlink(self._file(number))
        except OSError:
            pass

    def _record_at(self, fd, off, end):
        """(event, next offset) of the record at off; (None, next offset) past a torn one."""
        if end - off >= _SPOOL_RECORD_BYTES:
            magic, n, crc = _SPOOL_RECORD.unpack(os.pread(fd, _SPOOL_RECORD_BYTES, off))
            if magic == _SPOOL_MAGIC and n <= end - off - _SPOOL_RECORD_BYTES:
                data = os.pread(fd, n, off + _SPOOL_RECORD_BYTES)
                if len(data) == n and zlib.crc32(data) == crc:
                    return data, off + _SPOOL_RECORD_BYTES + n
        return None, self._next_magic(fd, off + 1, end)

    @staticmethod
    def _next_magic(fd, off, end):
        while off < end:
            chunk = os.pread(fd, min(1 << 16, end - off), off)
            if not chunk:
                break
            at = chunk.find(_SPOOL_MAGIC)
            if at >= 0:
                return off + at
            if off + len(chunk) >= end:
                break
            off += len(chunk) - (len(_SPOOL_MAGIC) - 1)  # a magic may straddle two chunks
        return end

    # ── writing ──
    def append(self, event):
        record = _SPOOL_RECORD.pack(_SPOOL_MAGIC, len(event), zlib.crc32(event)) + event
        with self.lock:
            active = self.segments[-1] if self._fd is not None else None
            if active is None or (active.size > 0 and active.size + len(record) > self.segment_bytes):
                active = self._roll()
            view = memoryview(record)
            while view:
                view = view[os.write(self._fd, view):]
            active.size += len(record)
            active.records += 1
            self.pending += 1
            self.bytes += len(record)
            self.spooled += 1
            self._dirty = True
            self._bound()

    def _roll(self):
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        number = (self.segments[-1].number + 1) if self.segments else 1
        self._fd = os.open(self._file(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_APPEND", 0), 0o600)
        self._dirty = False
        self._synced = time.monotonic()
        seg = _Segment(number, 0, 0)
        self.segments.append(seg)
        if len(self.segments) == 1:
            self._committed = self._send = (number, 0)
        return seg

    def _bound(self):
        """Past max_bytes the oldest segment goes, its records counted in dropped_oldest."""
        while self.bytes > self.max_bytes and len(self.segments) > 1:
            seg = self.segments.pop(0)
            self.dropped_oldest += seg.records
            self.pending -= seg.records
            self.bytes -= seg.size
            if self._send[0] == seg.number:
                self.inflight = 0  # their acks will find no segment and be ignored
            self._unlink(seg.number)
            head = self.segments[0].number
            self._committed = (head, 0)
            if self._send[0] < head:
                self._send = (head, 0)
            self._write_cursor()

    def maybe_sync(self, force=False):
        """fsync the segment being written at most every fsync_interval seconds: a trainer crash
        loses nothing written (the page cache survives it); a power cut loses up to that long."""
        with self.lock:
            if self._fd is not None and self._dirty and (force or time.monotonic() - self._synced >= self.fsync_interval):
                os.fsync(self._fd)
                self._dirty = False
                self._synced = time.monotonic()

    # ── reading ──
    def has_unsent(self):
        # Lock-free (called under the hook's lock, which emit() takes): a stale answer only
        # means a read_batch that finds nothing, or one more wait.
        try:
            last = self.segments[-1]
        except IndexError:
            return False
        number, offset = self._send
        return number < last.number or offset < last.size

    def read_batch(self, max_events, max_bytes):
        """The next unsent records as (segment, end offset, events), within one segment; None when
        everything has been sent. Records are sent at most once per connection (rewind() after a loss)."""
        with self.lock:
            while self.segments:
                seg = next((s for s in self.segments if s.number == self._send[0]), None)
                if seg is None:
                    self._send = (self.segments[0].number, 0)
                    continue
                off = self._send[1]
                if off >= seg.size:
                    if seg is self.segments[-1]:
                        return None
                    self._send = (self.segments[self.segments.index(seg) + 1].number, 0)
                    continue
                if self._read_number != seg.number:
                    if self._read_fd is not None:
                        os.close(self._read_fd)
                    self._read_fd = os.open(self._file(seg.number), os.O_RDONLY)
                    self._read_number = seg.number
                events = []
                size = 0
                while off < seg.size and len(events) < max_events:
                    data, nxt = self._record_at(self._read_fd, off, seg.size)
                    if data is not None:
                        if events and size + len(data) > max_bytes:
                            break
                        events.append(data)
                        size += len(data)
                    off = nxt
                self._send = (seg.number, off)
                if events:
                    self.inflight += len(events)
                    return seg.number, off, events
            return None

    def commit(self, number, offset, count):
        """The server acknowledged the records of one read_batch."""
        with self.lock:
            seg = next((s for s in self.segments if s.number == number), None)
            if seg is None:
                return  # dropped by the bound while in flight (already counted there)
            seg.records -= count
            self.pending -= count
            self.inflight = max(0, self.inflight - count)
            self.sent += count
            self._committed = (number, offset)
            # Segments sent in full and acknowledged are deleted (never the one being written).
            while len(self.segments) > 1 and self.segments[0].records <= 0 and (self.segments[0].number < number or offset >= self.segments[0].size):
                old = self.segments.pop(0)
                self.bytes -= old.size
                self._unlink(old.number)
                if self._committed[0] == old.number:
                    self._committed = (self.segments[0].number, 0)
            self._write_cursor()

    def rewind(self):
        """A connection was lost: what it had not acknowledged is sent again from the cursor."""
        with self.lock:
            self._send = self._committed
            self.inflight = 0

    def close(self):
        with self.lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = self._read_number = None
            if self.segments:
                self._write_cursor()
            self._release_lock()


def _count_records(data, off):
    """(whole records, torn records) in a segment's bytes from off, as read_batch would see them."""
    records = torn = 0
    end = len(data)
    unpack = _SPOOL_RECORD.unpack_from
    while off < end:
        if end - off >= _SPOOL_RECORD_BYTES:
            magic, n, crc = unpack(data, off)
            nxt = off + _SPOOL_RECORD_BYTES + n
            if magic == _SPOOL_MAGIC and nxt <= end and zlib.crc32(memoryview(data)[off + _SPOOL_RECORD_BYTES:nxt]) == crc:
                records += 1
                off = nxt
                continue
        torn += 1
        at = data.find(_SPOOL_MAGIC, off + 1)
        off = end if at < 0 else at
    return records, torn


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _mark_late(event, backlog):
    """The event with meta `late: true` and `backlog` (spooled events still to come after it), so
    the server files it under its own step and time instead of treating it as live news."""
    try:
        magic, kind, meta_len, payload_len, ts = _HEADER.unpack_from(event, 0)
        meta = json.loads(event[_HEADER_BYTES:_HEADER_BYTES + meta_len].decode("utf-8")) if meta_len else {}
        if not isinstance(meta, dict):
            return event
        meta["late"] = True
        meta["backlog"] = max(0, int(backlog))
        mb = _json_encode(meta).encode("utf-8")
        if len(mb) > MAX_META_BYTES:
            return event
        return b"".join((_HEADER.pack(magic, kind, len(mb), payload_len, ts), mb, event[_HEADER_BYTES + meta_len:]))
    except Exception:  # noqa: BLE001 - an event we cannot re-read goes out as it is
        return event


# ─────────────────────────────── the hook ───────────────────────────────

_live_hooks = weakref.WeakSet()


@atexit.register
def _close_all_at_exit():
    # Daemon threads die with the interpreter; give connected hooks a moment to flush.
    for hook in list(_live_hooks):
        try:
            hook.close(timeout=1.0 if hook._state == "connected" else 0.0)
        except Exception:
            pass


class StreamingHook:
    """Non-blocking telemetry producer for one training run. See the module docstring."""

    def __init__(
        self,
        url,
        token=None,
        run=None,
        *,
        queue_size=4096,
        queue_bytes=64 << 20,
        batch_max_events=256,
        batch_max_bytes=1 << 20,
        flush_interval=0.05,
        connect_timeout=2.0,
        send_timeout=5.0,
        backoff_initial=0.1,
        backoff_max=10.0,
        breaker_threshold=3,
        breaker_cooldown=1.0,
        healthy_after=2.0,
        client_name=None,
        clock=None,
        spool_dir=None,
        spool_max_bytes=256 << 20,
        spool_rate=1000.0,
        spool_fsync_interval=1.0,
    ):
        """
        url               ws://host:port/ingest, wss://..., tcp://host:port or unix:///path
        token, run        sent in the hello event (and as Authorization: Bearer on WebSocket)
        queue_size        most events held while waiting to be sent (then drop, lowest priority first)
        queue_bytes       most encoded bytes held (same policy)
        batch_max_events  most events per frame; a full batch is sent without waiting
        batch_max_bytes   most bytes per frame (one larger event still goes alone)
        flush_interval    seconds a queued event waits at most before its frame goes out
        breaker_*         consecutive failures that open the breaker; first open period (doubles)
        healthy_after     a connection that lived this long (or got an Ack) resets the failure count
        clock             callable returning the event timestamp in ms (default: wall clock)
        spool_dir         directory for the offline spool: while the server is unreachable, events go
                          there instead of being dropped, and are sent (marked late, with their
                          original step and time) once it is back; read back on start
        spool_max_bytes   bound of the spool on disk; past it the oldest events go (counted)
        spool_rate        events per second sent from the spool, in the gaps between live frames
        spool_fsync_interval  seconds between fsyncs of the spool while it is written
        """
        self._target = _parse_url(url)  # a bad URL is a programming error: raise here, once
        self._url = url
        self._token = token
        self._run = run
        self._queue_size = max(1, int(queue_size))
        self._queue_bytes = max(1024, int(queue_bytes))
        self._batch_max_events = max(1, int(batch_max_events))
        self._batch_max_bytes = max(1024, int(batch_max_bytes))
        self._flush_interval = max(0.001, float(flush_interval))
        self._connect_timeout = float(connect_timeout)
        self._send_timeout = float(send_timeout)
        self._backoff_initial = float(backoff_initial)
        self._backoff_max = float(backoff_max)
        self._breaker_threshold = max(1, int(breaker_threshold))
        self._breaker_cooldown = float(breaker_cooldown)
        self._healthy_after = float(healthy_after)
        self._client_name = client_name or "ringcast-python/" + __version__
        self._clock = clock or (lambda: time.time() * 1000.0)
        self._spool_dir = None if spool_dir is None else os.fspath(spool_dir)
        self._spool_max_bytes = int(spool_max_bytes)
        self._spool_rate = max(1.0, float(spool_rate))
        self._spool_fsync_interval = max(0.0, float(spool_fsync_interval))
        self._spool = None  # opened by the sender thread: reading a large spool back must not delay the trainer
        self._spool_error = None
        self._spool_errors = 0
        self._spool_tokens = 0.0
        self._spool_refill = time.monotonic()

        # Re-entrant: a signal handler that emits (say, a "run interrupted" milestone) may run
        # while the main thread is inside an emit holding this lock.
        self._lock = threading.RLock()
        self._work = threading.Condition(self._lock)  # sender waits here for events
        self._idle = threading.Condition(self._lock)  # flush()/close() wait here for an empty queue
        self._queues = [collections.deque() for _ in range(_LEVELS)]
        self._level_bytes = [0] * _LEVELS  # bytes queued per priority level (eviction feasibility)
        self._queued = 0
        self._queued_bytes = 0
        self._inflight = 0
        self._batch_levels = []
        self._seq = 0
        self._flush_requested = False
        self._stopping = threading.Event()
        self._stop_deadline = None

        self._sent = 0
        self._sent_frames = 0
        self._sent_bytes = 0
        self._lost = 0
        self._unacked = 0
        self._resent = 0
        self._delivered = 0
        self._urgent = False
        self._dropped = dict.fromkeys(TELEMETRY_KINDS, 0)
        self._invalid = dict.fromkeys(TELEMETRY_KINDS, 0)
        self._skipped_values = 0
        self._server_errors = 0
        self._last_server_error = None
        self._acks = 0
        self._last_ack = None
        self._sender_cpu = 0.0
        self._connects = 0
        self._warned = set()
        self._history = collections.deque(maxlen=32)

        self._state = "disconnected"
        self._breaker = "closed"
        self._failures = 0
        self._backoff = self._backoff_initial
        self._cooldown = self._breaker_cooldown
        self._conn = None
        self._history.append(("disconnected", time.time()))

        self._thread = threading.Thread(target=self._sender, name="ringcast-sender", daemon=True)
        self._thread.start()
        _live_hooks.add(self)

    # ───────────── emit API: encode + enqueue; never raises, never blocks ─────────────

    def emit_ppo_metrics(self, metrics, global_step):
        """PPO (or any) scalar metrics for one step; non-finite values are skipped and counted."""
        try:
            payload, skipped = encode_metrics_payload(global_step, metrics)
            if skipped:
                self._skipped_values += skipped
            return self._enqueue(1, b"".join((_HEADER.pack(MAGIC, 1, 0, len(payload), self._clock()), payload)))
        except Exception as exc:  # noqa: BLE001 - the training loop must never see our errors
            return self._reject("metrics", exc)

    def emit_predictions(self, top_moves, position=None, value=None, step=None, *, distribution=None, action_space=None):
        """Top-k moves as (move, prob) tuples or {move, prob} dicts; optional full distribution."""
        try:
            moves = []
            for entry in list(top_moves)[:64]:
                if isinstance(entry, dict):
                    move = entry.get("move", entry.get("usi"))
                    prob = entry.get("prob", entry.get("probability"))
                else:
                    move, prob = entry[0], entry[1]
                prob = float(_scalar(prob))
                if prob - prob != 0.0:
                    raise InvalidEvent("probability of %r is not finite" % (move,))
                # Softmax output can overshoot [0, 1] by rounding; the server insists on the range.
                moves.append({"move": str(move), "prob": 0.0 if prob < 0.0 else 1.0 if prob > 1.0 else prob})
            if not moves:
                raise InvalidEvent("top_moves is empty")
            meta = {"top_moves": moves}
            _put_number(meta, "step", step)
            _put_number(meta, "value", value)
            if position is not None:
                meta["position"] = str(position)
            if action_space is not None:
                meta["action_space"] = str(action_space)
            payload = b""
            if distribution is not None:
                payload, _ = _as_float32(distribution, max_dims=1)
            return self._enqueue(4, self._event(4, meta, payload))
        except Exception as exc:  # noqa: BLE001
            return self._reject("policy", exc)

    def cache_attention_weights(self, weights, layer_id=None, step=None):
        """SE attention: 1-D channel weights of one block (block layer_id), or 2-D [blocks][channels]."""
        try:
            payload, shape = _as_float32(weights, max_dims=2)
            blocks, channels = (1, shape[0]) if len(shape) == 1 else shape
            meta = {"blocks": blocks, "channels": channels}
            if layer_id is not None:
                meta["layer_id"] = int(_scalar(layer_id))
            _put_number(meta, "step", step)
            return self._enqueue(2, self._event(2, meta, payload))
        except Exception as exc:  # noqa: BLE001
            return self._reject("se_attention", exc)

    def emit_board_heatmap(self, grid, *, step=None, source=None):
        """9x9 grid (or 81 values), row 0 = rank a, column 0 = file 9, as sente sees the board."""
        try:
            payload, shape = _as_float32(grid, max_dims=2)
            if len(payload) != 81 * 4:
                raise InvalidEvent("heatmap must hold 81 values (9x9), got shape %s" % (shape,))
            meta = {}
            _put_number(meta, "step", step)
            if source is not None:
                meta["source"] = str(source)
            return self._enqueue(3, self._event(3, meta, payload))
        except Exception as exc:  # noqa: BLE001
            return self._reject("board_heatmap", exc)

    def emit_game_state(self, game_id, sfen=None, moves=None, last_move=None, result=None, move_count=None, **extra):
        """A game's position; extra keyword fields travel in the meta unchanged."""
        try:
            meta = {"game_id": _scalar(game_id) if isinstance(_scalar(game_id), (int, float)) else str(game_id)}
            if sfen is not None:
                meta["sfen"] = str(sfen)
            if moves is not None:
                meta["moves"] = [str(m) for m in moves]
            if last_move is not None:
                meta["last_move"] = str(last_move)
            if result is not None:
                meta["result"] = str(result)
            if move_count is not None:
                meta["move_count"] = int(_scalar(move_count))
            for k, v in extra.items():
                meta.setdefault(k, v)
            return self._enqueue(5, self._event(5, meta), critical=result is not None)
        except Exception as exc:  # noqa: BLE001
            return self._reject("game_state", exc)

    def emit_milestone(self, name, message=None, step=None, value=None, **extra):
        """A named moment (first win, new best, ...): the last thing dropped under overflow."""
        try:
            meta = {"name": str(name)}
            if message is not None:
                meta["message"] = str(message)
            _put_number(meta, "step", step)
            _put_number(meta, "value", value)
            for k, v in extra.items():
                meta.setdefault(k, v)
            return self._enqueue(6, self._event(6, meta))
        except Exception as exc:  # noqa: BLE001
            return self._reject("milestone", exc)

    def emit_experience(self, game_id, player_id, turn, state, action, reward, done, legal_mask=None):
        """One RL transition: float32 state tensor (1-4 dims) + optional legal-action mask."""
        try:
            state_bytes, shape = _as_float32(state, max_dims=4)
            reward = float(_scalar(reward))
            if reward - reward != 0.0:
                raise InvalidEvent("reward must be a finite number")
            meta = {
                "game_id": str(game_id),
                "player_id": str(player_id),
                "turn": int(_scalar(turn)),
                "action": int(_scalar(action)),
                "reward": reward,
                "done": bool(_scalar(done)),
                "state_shape": list(shape),
            }
            payload = state_bytes
            if legal_mask is not None:
                bits, count = _pack_mask(legal_mask)
                meta["mask_len"] = count
                payload = b"".join((state_bytes, bits))
            return self._enqueue(7, self._event(7, meta, payload))
        except Exception as exc:  # noqa: BLE001
            return self._reject("experience", exc)

    def emit_event(self, kind, meta=None, payload=b"", priority=None):
        """Escape hatch: send an event this client has no method for (kind: number or name)."""
        try:
            kind = KIND[kind] if isinstance(kind, str) else int(kind)
            return self._enqueue(kind, self._event(kind, meta, payload), priority)
        except Exception as exc:  # noqa: BLE001
            return self._reject(KIND_NAME.get(kind, "other") if isinstance(kind, int) else str(kind), exc)

    # ───────────── queue ─────────────

    def _event(self, kind, meta, payload=b""):
        mb = _meta_bytes(meta)
        return b"".join((_HEADER.pack(MAGIC, kind, len(mb), len(payload), self._clock()), mb, payload))

    def _enqueue(self, kind, data, priority=None, critical=False):
        prio = _PRIO_BY_KIND.get(kind, 2) if priority is None else max(0, min(_LEVELS - 1, int(priority)))
        n = len(data)
        if n > MAX_FRAME_BYTES:
            raise InvalidEvent("event of %d bytes exceeds the %d-byte frame limit" % (n, MAX_FRAME_BYTES))
        queues = self._queues
        level_bytes = self._level_bytes
        with self._lock:
            if self._stopping.is_set():
                self._count_drop(kind)
                return False
            over_count = self._queued + 1 - self._queue_size
            over_bytes = self._queued_bytes + n - self._queue_bytes
            if over_count > 0 or over_bytes > 0:
                # Evict only if evicting can make room: never empty the queue for nothing.
                if (sum(len(queues[p]) for p in range(prio + 1)) < over_count
                        or sum(level_bytes[:prio + 1]) < over_bytes):
                    self._count_drop(kind)  # what is queued matters more than this event
                    return False
                # The oldest event of the lowest priority at or below ours goes first.
                p = 0
                while self._queued >= self._queue_size or self._queued_bytes + n > self._queue_bytes:
                    while not queues[p]:
                        p += 1
                    _, vkind, vdata = queues[p].popleft()
                    self._queued -= 1
                    self._queued_bytes -= len(vdata)
                    level_bytes[p] -= len(vdata)
                    self._count_drop(vkind)
            self._seq += 1
            queues[prio].append((self._seq, kind, data))
            self._queued += 1
            self._queued_bytes += n
            level_bytes[prio] += n
            # Wake the sender for the first event (it then lingers flush_interval), for a full
            # batch, and for a critical event, which must not wait out the linger.
            urgent = kind == 6 or (kind == 5 and critical)
            if urgent:
                self._urgent = True
            if urgent or self._queued == 1 or self._queued >= self._batch_max_events:
                self._work.notify()
        return True

    def _count_drop(self, kind):
        name = KIND_NAME.get(kind, "other")
        self._dropped[name] = self._dropped.get(name, 0) + 1

    def _reject(self, kind_name, exc):
        with self._lock:
            self._invalid[kind_name] = self._invalid.get(kind_name, 0) + 1
            first = ("invalid", kind_name) not in self._warned
            self._warned.add(("invalid", kind_name))
        if first:
            log.warning("ringcast: dropped a %s event this client could not encode (%s); further ones are only counted", kind_name, exc)
        return False

    def _pop_batch_locked(self):
        """Oldest-first across priority levels, up to batch_max_events / batch_max_bytes."""
        out = []
        levels = self._batch_levels = []  # priority level of each popped event, for a resend
        size = 0
        queues = self._queues
        limit = self._batch_max_events
        while len(out) < limit:
            best = -1
            for level, q in enumerate(queues):
                if q and (best < 0 or q[0][0] < queues[best][0][0]):
                    best = level
            if best < 0:
                break
            item = queues[best][0]
            if out and size + len(item[2]) > self._batch_max_bytes:
                break
            queues[best].popleft()
            self._level_bytes[best] -= len(item[2])
            out.append(item)
            levels.append(best)
            size += len(item[2])
        self._queued -= len(out)
        self._queued_bytes -= size
        self._inflight = len(out)
        return out

    # ───────────── sender thread ─────────────

    def _sender(self):
        try:
            self._open_spool()
            self._sender_loop()
        except Exception:  # noqa: BLE001 - a bug here must not take the trainer down
            log.exception("ringcast: sender thread failed; telemetry stops, training continues")
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close(graceful=True)
            spool = self._spool
            unconfirmed = []
            with self._lock:
                if conn is not None and conn.unacked:
                    # Written but never confirmed before close gave up: may or may not have arrived.
                    # With a spool they are kept for the next start (at-least-once); else counted lost.
                    unconfirmed = [item for _, batch, _ in conn.unacked for item in batch]
                    conn.unacked.clear()
                    self._unacked -= len(unconfirmed)
                    if spool is None:
                        self._lost += len(unconfirmed)
                leftover = self._pop_all_locked()
                self._inflight = 0
                if spool is None:
                    for _, kind, _ in leftover:
                        self._count_drop(kind)
                self._idle.notify_all()
            if spool is not None:
                try:
                    self._spool_items(unconfirmed + sorted(leftover, key=lambda item: item[0]))
                    spool.close()
                except Exception:  # noqa: BLE001
                    log.exception("ringcast: could not close the spool")
            self._set_state("closed")

    # ───────────── offline spool ─────────────

    def _open_spool(self):
        if self._spool_dir is None:
            return
        try:
            self._spool = _Spool(self._spool_dir, self._spool_max_bytes, self._spool_fsync_interval)
        except (OSError, ValueError) as exc:
            self._spool_error = str(exc)
            log.warning("ringcast: spool %s unusable (%s); events are only queued in memory", self._spool_dir, exc)
            return
        if self._spool.pending:
            log.info("ringcast: spool %s holds %d events from before; they are sent once connected", self._spool_dir, self._spool.pending)

    def _spool_items(self, items):
        """Appends queued items (seq, kind, data) to the spool, in order; a failing disk is a counted drop."""
        spool = self._spool
        for _, kind, data in items:
            try:
                spool.append(data)
            except OSError as exc:
                with self._lock:
                    self._spool_errors += 1
                    self._spool_error = str(exc)
                    self._count_drop(kind)
                    first = ("spool", None) not in self._warned
                    self._warned.add(("spool", None))
                if first:
                    log.warning("ringcast: cannot write the spool (%s); events are dropped meanwhile (counted)", exc)

    def _spool_queue(self):
        """While disconnected: what the trainer emitted goes to disk instead of waiting in memory."""
        if self._spool is None or not self._queued:
            return
        with self._lock:
            items = self._pop_all_locked()
            self._idle.notify_all()
        items.sort(key=lambda item: item[0])  # emit order across priority levels
        self._spool_items(items)

    def _sync_spool(self):
        if self._spool is not None:
            try:
                self._spool.maybe_sync()
            except OSError as exc:
                self._spool_errors += 1
                self._spool_error = str(exc)

    def _pause(self, seconds):
        """Waits out a backoff (True when closing); with a spool, moves new events to disk meanwhile."""
        if self._spool is None:
            return self._stopping.wait(seconds)
        deadline = time.monotonic() + seconds
        while True:
            self._spool_queue()
            self._sync_spool()
            left = deadline - time.monotonic()
            if left <= 0:
                return self._stopping.is_set()
            if self._stopping.wait(min(left, 0.1)):
                return True

    def _spool_wait(self):
        """0 when a spooled batch may go now; None when the spool has nothing to send; else seconds until the rate allows one."""
        spool = self._spool
        if spool is None or self._stopping.is_set() or not spool.has_unsent():
            return None
        now = time.monotonic()
        # At most a tenth of a second's worth at once: a drain is spread out, not one big burst.
        burst = max(1.0, min(float(self._batch_max_events), self._spool_rate / 10.0))
        self._spool_tokens = min(burst, self._spool_tokens + (now - self._spool_refill) * self._spool_rate)
        self._spool_refill = now
        # A frame of a tenth of a second's worth (or all that is left), not a frame per token.
        want = min(burst, float(max(1, spool.pending - spool.inflight)))
        if self._spool_tokens >= want:
            return 0
        return (want - self._spool_tokens) / self._spool_rate

    def _send_spooled(self, conn):
        """One frame of spooled events, each marked late with the backlog behind it."""
        spool = self._spool
        try:
            got = spool.read_batch(max(1, min(self._batch_max_events, int(self._spool_tokens))), self._batch_max_bytes)
        except OSError as exc:
            self._spool_errors += 1
            self._spool_error = str(exc)
            return
        if got is None:
            return
        number, end, events = got
        self._spool_tokens -= len(events)
        behind = spool.pending - spool.inflight
        n = len(events)
        events = [_mark_late(e, behind + n - i - 1) for i, e in enumerate(events)]
        with self._lock:
            conn.frames_sent += 1
            if conn.frame_acks:
                if not conn.unacked and not conn.spool_unacked:
                    conn.ack_progress = time.monotonic()
                conn.spool_unacked.append((conn.frames_sent, number, end, n))
        try:
            conn.send_frame(events)
            with self._lock:
                self._sent_frames += 1
                self._sent_bytes += sum(len(e) for e in events)
            if not conn.frame_acks:
                spool.commit(number, end, n)  # a server without acks: written is all we can know
        except Exception as exc:  # noqa: BLE001
            conn.dead = True  # still on disk: sent again after the reconnect
            self._set_state("disconnected", exc)

    def _pop_all_locked(self):
        items = [item for q in self._queues for item in q]
        for q in self._queues:
            q.clear()
        self._level_bytes[:] = [0] * _LEVELS
        self._queued = 0
        self._queued_bytes = 0
        return items

    def _sender_loop(self):
        while True:
            # CPU this thread has used: the part of telemetry's cost that emit timings do not show.
            self._sender_cpu = time.thread_time()
            stopping = self._stopping.is_set()
            if stopping and ((self._queued == 0 and self._unacked == 0) or time.monotonic() >= self._stop_deadline):
                return
            self._sync_spool()
            conn = self._conn
            if conn is None or conn.dead:
                if conn is not None:
                    self._spool_queue()  # the server is gone: what waits for it goes to disk
                    self._disconnected(conn)
                    if not self._stopping.is_set():
                        self._after_failure("connection lost")
                    continue
                if stopping and self._failures > 0:
                    return  # closing with the server away: do not sit out a backoff
                if self._breaker == "open":
                    if self._pause(self._cooldown * random.uniform(0.8, 1.2)):
                        continue
                    self._cooldown = min(self._backoff_max, self._cooldown * 2)
                    self._breaker = "half-open"
                    self._set_state("half-open")
                try:
                    self._connect()
                except Exception as exc:  # noqa: BLE001
                    self._failures += 1
                    self._after_failure(exc)
                continue
            stalled = False
            from_spool = False
            with self._lock:
                # Idle: sleep until an emit wakes us (no periodic wake-ups costing the trainer GIL time).
                # The timeout is only a safety net; a dead connection, an ack and close() notify too.
                while not conn.dead:
                    if (conn.unacked or conn.spool_unacked) and time.monotonic() - conn.ack_progress > self._send_timeout:
                        stalled = conn.dead = True  # written, never acknowledged: the server is gone
                        break
                    stopping = self._stopping.is_set()
                    if stopping and time.monotonic() >= self._stop_deadline:
                        break
                    if len(conn.unacked) + len(conn.spool_unacked) >= _MAX_UNACKED_FRAMES or (conn.unacked and stopping and self._queued == 0):
                        self._work.wait(0.05)  # wait for acks
                    elif self._queued == 0 and not stopping:
                        # No live events: the gap where the spool drains (rate-limited).
                        spool_wait = self._spool_wait()
                        if spool_wait == 0:
                            from_spool = True
                            break
                        idle = 0.25 if conn.unacked or conn.spool_unacked else 1.0
                        self._work.wait(idle if spool_wait is None else min(idle, spool_wait))
                    else:
                        break
                # Linger so events emitted together (a trainer's burst) share one frame; a
                # critical event (milestone, game result) ends the linger at once.
                if from_spool:
                    pass  # no live events waiting: the spooled frame goes now, no linger
                elif (self._queued < self._batch_max_events and not self._flush_requested and not self._urgent
                        and not self._stopping.is_set() and not conn.dead):
                    self._work.wait(self._flush_interval)
                batch = self._pop_batch_locked() if not conn.dead and not from_spool else []
                if self._queued == 0:
                    self._flush_requested = False  # a flush lasts until the queue is empty
                    self._urgent = False
                if batch:
                    conn.frames_sent += 1
                if batch and conn.frame_acks:
                    # Tracked before the write: the ack may come back before sendall returns.
                    if not conn.unacked and not conn.spool_unacked:
                        conn.ack_progress = time.monotonic()
                    conn.unacked.append((conn.frames_sent, batch, self._batch_levels))
                    self._unacked += len(batch)
                    self._inflight = 0
            if stalled:
                self._set_state("disconnected", "server stopped acknowledging frames for %.1f s" % self._send_timeout)
            if from_spool:
                self._send_spooled(conn)
                continue
            if not batch:
                continue
            try:
                conn.send_frame([item[2] for item in batch])
                with self._lock:
                    self._sent += len(batch)
                    self._sent_frames += 1
                    self._sent_bytes += sum(len(item[2]) for item in batch)
            except Exception as exc:  # noqa: BLE001
                conn.dead = True
                if not conn.frame_acks:
                    # Part of the frame may have arrived; resending could duplicate, so count it lost.
                    # (With acks it is still unacknowledged and goes out again on the next connection.)
                    with self._lock:
                        self._lost += len(batch)
                self._set_state("disconnected", exc)
            finally:
                with self._lock:
                    self._inflight = 0
                    if self._queued == 0:
                        self._idle.notify_all()

    def _requeue_unacked_locked(self, conn):
        """Puts what a lost connection never acknowledged back at the front of the queue, in order."""
        items = [(level, item) for _, batch, levels in conn.unacked for level, item in zip(levels, batch)]
        conn.unacked.clear()
        if not items:
            return
        self._unacked -= len(items)
        self._resent += len(items)
        # Every unacknowledged event is older than everything queued (batches pop oldest first).
        for level, item in reversed(items):
            self._queues[level].appendleft(item)
            self._level_bytes[level] += len(item[2])
            self._queued += 1
            self._queued_bytes += len(item[2])
        # Still bounded: past the limits the oldest of the lowest priority goes, as in _enqueue.
        p = 0
        while self._queued > self._queue_size or self._queued_bytes > self._queue_bytes:
            while not self._queues[p]:
                p += 1
            _, vkind, vdata = self._queues[p].popleft()
            self._queued -= 1
            self._queued_bytes -= len(vdata)
            self._level_bytes[p] -= len(vdata)
            self._count_drop(vkind)

    def _connect(self):
        conn = _open(self._target, self._token, self._connect_timeout)
        try:
            conn.sock.settimeout(self._send_timeout)
            hello = {"token": self._token, "run": self._run, "client": self._client_name, "acks": True}
            conn.send_frame([self._event(16, {k: v for k, v in hello.items() if v is not None})])
            threading.Thread(target=self._reader, args=(conn,), name="ringcast-reader", daemon=True).start()
            # Wait for the server's verdict on the hello before sending queued events: a refused
            # token must not swallow the queue (nor count it as sent). A server that never
            # answers is tolerated after connect_timeout.
            if conn.answered.wait(self._connect_timeout) and not conn.acked:
                # ringcast closes the connection only when authentication fails; an Error that
                # is not followed by a close (say, a run name it will not take) lets events in.
                if conn.refusal is None or conn.eof.wait(0.25):
                    raise ConnectionError(conn.refusal or "server closed the connection after the hello")
        except BaseException:
            conn.close(graceful=False)
            raise
        self._conn = conn
        self._connects += 1
        if self._breaker != "closed":
            self._breaker = "closed"
        self._set_state("connected")

    def _disconnected(self, conn):
        self._conn = None
        conn.close(graceful=False)
        with self._lock:
            self._requeue_unacked_locked(conn)
            conn.spool_unacked.clear()
        if self._spool is not None:
            self._spool.rewind()  # unacknowledged spooled frames are still on disk: sent again
        if conn.acked or time.monotonic() - conn.opened >= self._healthy_after:
            self._healthy()  # it was a good connection: this is a fresh outage, not a streak
        # A connection the server drops at once (bad token, wrong port) counts like a refused one.
        self._failures += 1

    def _healthy(self):
        self._failures = 0
        self._backoff = self._backoff_initial
        self._cooldown = self._breaker_cooldown

    def _after_failure(self, reason):
        """Circuit breaker: retry with growing, jittered delays; open after a streak of failures."""
        if self._breaker == "half-open" or self._failures >= self._breaker_threshold:
            self._breaker = "open"
            self._set_state("open", reason)
            return
        self._set_state("disconnected", reason)
        # Jitter keeps a fleet of trainers from reconnecting in lockstep after a server restart.
        self._pause(self._backoff * random.uniform(0.5, 1.0))
        self._backoff = min(self._backoff_max, self._backoff * 2)

    def _reader(self, conn):
        """Reads server events (Error, Ack) so the sender never waits on them."""
        try:
            while not conn.dead:
                frame = conn.read_frame(1 << 20)
                if frame is None:
                    break
                self._handle_server_frame(conn, frame)
        except Exception as exc:  # noqa: BLE001
            if not conn.dead:
                log.debug("ringcast: reader stopped: %s", exc)
        finally:
            conn.dead = True
            conn.answered.set()
            conn.eof.set()
            with self._lock:
                self._work.notify()

    def _handle_server_frame(self, conn, frame):
        offset = 0
        end = len(frame)
        while offset + _HEADER_BYTES <= end:
            magic, kind, meta_len, payload_len, _ = _HEADER.unpack_from(frame, offset)
            if magic != MAGIC or offset + _HEADER_BYTES + meta_len + payload_len > end:
                return
            meta = {}
            if meta_len:
                try:
                    meta = json.loads(frame[offset + _HEADER_BYTES : offset + _HEADER_BYTES + meta_len].decode("utf-8"))
                except ValueError:
                    meta = {"error": "undecodable server meta"}
            offset += _HEADER_BYTES + meta_len + payload_len
            if kind == 17:
                message = str(meta.get("error", meta)) if isinstance(meta, dict) else str(meta)
                if not conn.acked and conn.refusal is None:
                    conn.refusal = "server refused the hello: %s" % message
                    conn.answered.set()
                with self._lock:
                    self._server_errors += 1
                    self._last_server_error = meta
                    first = len(self._warned) < 64 and ("server", message) not in self._warned
                    if first:
                        self._warned.add(("server", message))
                if first:
                    log.warning("ringcast: server rejected an event: %s (repeats are only counted)", message)
            elif kind == 18:
                frames = meta.get("frames") if isinstance(meta, dict) else None
                if isinstance(frames, int) and not isinstance(frames, bool):
                    self._frames_acked(conn, frames)
                    continue
                conn.frame_acks = isinstance(meta, dict) and meta.get("acks") is True
                conn.acked = True
                conn.answered.set()
                self._healthy()
                with self._lock:
                    self._acks += 1
                    self._last_ack = meta

    def _frames_acked(self, conn, frames):
        """The server has every event of frames 1..frames of this connection in its ring."""
        commits = []
        with self._lock:
            while conn.unacked and conn.unacked[0][0] <= frames:
                _, batch, _ = conn.unacked.popleft()
                self._unacked -= len(batch)
                self._delivered += len(batch)
            while conn.spool_unacked and conn.spool_unacked[0][0] <= frames:
                commits.append(conn.spool_unacked.popleft()[1:])
            conn.ack_progress = time.monotonic()
            self._work.notify()
            if self._queued == 0 and self._unacked == 0:
                self._idle.notify_all()
        for number, end, count in commits:  # file I/O outside the hook's lock
            try:
                self._spool.commit(number, end, count)
                with self._lock:
                    self._delivered += count
            except OSError as exc:
                self._spool_errors += 1
                self._spool_error = str(exc)

    def _set_state(self, state, reason=None):
        previous = self._state
        if state == previous:
            return
        self._state = state
        self._history.append((state, time.time()))
        # One log line per state change, so a dead server costs a handful of lines, not one per retry.
        if state == "half-open":
            log.debug("ringcast: circuit half-open, trying %s once", self._url)
        elif state == "connected":
            log.info("ringcast: connected to %s", self._url)
        elif state == "closed":
            log.info("ringcast: closed (%s)", self._url)
        elif state == "open" and previous == "half-open":
            log.debug("ringcast: %s still unreachable (%s); circuit open again", self._url, reason)
        elif state == "open":
            log.warning("ringcast: %s unreachable (%s); circuit open, retrying with backoff, events keep queueing (bounded)", self._url, reason)
        elif state == "disconnected" and reason is not None:
            log.warning("ringcast: disconnected from %s (%s); reconnecting", self._url, reason)

    # ───────────── control ─────────────

    def stats(self):
        """Counters and state; cheap enough to call every step."""
        spool = self._spool
        with self._lock:
            return {
                "sent": self._sent,
                "sent_frames": self._sent_frames,
                "sent_bytes": self._sent_bytes,
                "dropped": dict(self._dropped),
                "invalid": dict(self._invalid),
                "lost": self._lost,
                "unacked": self._unacked,
                "delivered": self._delivered,
                "resent": self._resent,
                "skipped_values": self._skipped_values,
                "queued": self._queued + self._inflight,
                "queued_bytes": self._queued_bytes,
                "state": self._state,
                "breaker": self._breaker,
                "connects": self._connects,
                "server_errors": self._server_errors,
                "last_server_error": self._last_server_error,
                "acks": self._acks,
                "last_ack": self._last_ack,
                "history": [s for s, _ in self._history],
                "sender_cpu_s": self._sender_cpu,
                # Offline spool (zeros without spool_dir): events written to disk, sent from it and
                # acknowledged, dropped past spool_max_bytes (oldest first), bytes on disk, events
                # still to send, torn records skipped when it was read back.
                "spooled": spool.spooled if spool else 0,
                "sent_from_spool": spool.sent if spool else 0,
                "dropped_oldest": spool.dropped_oldest if spool else 0,
                "spool_bytes": spool.bytes if spool else 0,
                "spool_backlog": spool.pending if spool else 0,
                "spool_torn": spool.torn if spool else 0,
                "spool_errors": self._spool_errors,
                "spool_error": self._spool_error,
            }

    def flush(self, timeout=2.0):
        """Wait until everything queued has been sent, and acknowledged where the server acks
        frames (or timeout). True if the queue drained.

        Returns False at once while the circuit is open: the server is known to be away (or
        refusing us), so waiting out the timeout would only stall the caller.
        """
        deadline = time.monotonic() + max(0.0, float(timeout))
        with self._lock:
            self._flush_requested = True
            self._work.notify()
            while self._queued or self._inflight or self._unacked:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive() or self._breaker == "open":
                    return False
                self._idle.wait(min(left, 0.05))
            return True

    def close(self, timeout=2.0):
        """Send what is queued (for at most timeout seconds), then disconnect. Idempotent."""
        if self._stopping.is_set() and not self._thread.is_alive():
            return
        with self._lock:
            self._stop_deadline = time.monotonic() + max(0.0, float(timeout))
            self._stopping.set()
            self._work.notify()
        self._thread.join(max(0.0, float(timeout)) + 0.5)
        _live_hooks.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ───────────── command line: a connectivity check for trainer hosts ─────────────


def _check(url, token, run, count, timeout, out):
    """Send `count` test metrics events and report what the server acknowledged; 0 when all went through."""
    started = time.monotonic()
    hook = StreamingHook(url, token=token, run=run, connect_timeout=min(timeout, 5.0), client_name="ringcast-check")
    try:
        for i in range(count):
            hook.emit_ppo_metrics({"ringcast_check/seq": float(i)}, i)
        drained = hook.flush(timeout)
        # Rejections come back as error events after the frame was read: give them a moment.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and hook.stats()["state"] == "connected":
            time.sleep(0.05)
        s = hook.stats()
    finally:
        hook.close(1.0)
    ms = (time.monotonic() - started) * 1000
    ack = s["last_ack"]
    print("ringcast check %s (ringcast_client %s)" % (url, __version__), file=out)
    if ack:
        print("  server acknowledged: run=%s producer_id=%s" % (ack.get("run"), ack.get("producer_id")), file=out)
    else:
        print("  no acknowledgement from the server (state %s)" % s["state"], file=out)
    print("  sent %d of %d events in %d frame(s), %d bytes; rejected by the server: %d; dropped here: %d" % (
        s["sent"], count, s["sent_frames"], s["sent_bytes"], s["server_errors"], sum(s["dropped"].values())), file=out)
    if s["last_server_error"]:
        print("  last server error: %s" % json.dumps(s["last_server_error"]), file=out)
    ok = bool(ack) and drained and s["sent"] == count and s["server_errors"] == 0
    print("%s (%.0f ms)" % ("OK" if ok else "FAILED", ms), file=out)
    return 0 if ok else 1


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ringcast_client", description="ringcast trainer client tools")
    parser.add_argument("--version", action="version", version="ringcast_client " + __version__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="send a burst of test metrics to URL and print what the server acknowledged")
    check.add_argument("url", help="tcp://host:port, unix:///path or ws://host:port/ingest")
    check.add_argument("--token", default=os.environ.get("RINGCAST_INGEST_TOKEN"), help="ingest token (default: $RINGCAST_INGEST_TOKEN)")
    check.add_argument("--run", default="ringcast-check", help="run name the test events go to (default: ringcast-check)")
    check.add_argument("--count", type=int, default=20, help="events in the burst (default 20)")
    check.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the burst to go out (default 5)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token is required (or set RINGCAST_INGEST_TOKEN)")
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        return _check(args.url, args.token, args.run, args.count, args.timeout, sys.stdout)
    except ValueError as exc:  # a bad URL
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())


# ─────────────────────────────── experience consumer ───────────────────────────────
#
# The RL side of `/experience`: batches of experience records, filtered on the server, with
# sequence numbers so a reconnect (possibly to another gateway thread) resumes exactly after
# the last batch received. Format v2 of src/shared/telemetry/experience-batch.ts.

_numpy_module = []


def _numpy():
    """numpy when installed (states become ndarrays), else None (array('f')). Imported on first
    use by the consumer only: a trainer that just produces never pays for the import."""
    if not _numpy_module:
        try:
            import numpy
        except ImportError:
            numpy = None
        _numpy_module.append(numpy)
    return _numpy_module[0]

_BATCH_V2_MAGIC = 0x58
_BATCH_FLAG_DEFLATE = 1
_F64_U32 = struct.Struct("<dI")
_BATCH_HEAD = struct.Struct("<BBHI")
# Filter fields the server knows (experience-filter.ts); configure() accepts these.
EXPERIENCE_FILTERS = (
    "games", "players", "min_turn", "max_turn", "reward_min", "reward_max", "terminal_only",
    "sample_rate", "per_game_cap", "batch_size", "timeout_ms", "max_rate",
)


class Experience(object):
    """One experience record. ``state`` holds prod(state_shape) float32 values (an ndarray of
    shape ``state_shape`` with numpy, a flat ``array('f')`` without); ``legal_mask`` is the
    bitset bytes (action i = bit ``i & 7`` of byte ``i >> 3``), ``mask_len`` its length in bits."""

    __slots__ = ("seq", "game_id", "player_id", "turn", "action", "reward", "done", "state", "state_shape", "legal_mask", "mask_len", "timestamp")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def is_legal(self, action):
        return 0 <= action < self.mask_len and bool(self.legal_mask[action >> 3] & (1 << (action & 7)))

    def __repr__(self):
        return "Experience(seq=%r, game_id=%r, player_id=%r, turn=%r, action=%r, reward=%r, done=%r, state_shape=%r, mask_len=%r)" % (
            self.seq, self.game_id, self.player_id, self.turn, self.action, self.reward, self.done, self.state_shape, self.mask_len)


class ExperienceBatch(object):
    """A batch as the server sent it: ``records``, ``seq_first``, ``seq_last``, ``dropped`` (records
    lost for this consumer since the previous batch: queue full or over its rate), ``missed``
    (sequence numbers skipped because the server no longer had them when this consumer resumed)
    and ``server_time`` (ms since the epoch)."""

    __slots__ = ("records", "seq_first", "seq_last", "dropped", "missed", "server_time")

    def __init__(self, records, seq_first, seq_last, dropped, missed, server_time):
        self.records = records
        self.seq_first = seq_first
        self.seq_last = seq_last
        self.dropped = dropped
        self.missed = missed
        self.server_time = server_time

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __repr__(self):
        return "ExperienceBatch(%d records, seq %r..%r, dropped=%r, missed=%r)" % (len(self.records), self.seq_first, self.seq_last, self.dropped, self.missed)


def decode_experience(data, seq=None):
    """One experience event (event-codec format) into an Experience."""
    magic, kind, meta_len, payload_len, ts = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or kind != KIND["experience"]:
        raise ValueError("not an experience event (magic %#x, kind %d)" % (magic, kind))
    meta = json.loads(bytes(data[_HEADER_BYTES:_HEADER_BYTES + meta_len])) if meta_len else {}
    shape = tuple(meta.get("state_shape") or (46, 9, 9))
    n = 1
    for d in shape:
        n *= d
    at = _HEADER_BYTES + meta_len
    raw = data[at:at + n * 4]
    np = _numpy()
    if np is not None:
        state = np.frombuffer(bytes(raw), dtype="<f4").reshape(shape)
    else:
        state = array("f")
        state.frombytes(bytes(raw))
        if not _LITTLE:
            state.byteswap()
    mask_len = int(meta.get("mask_len") or 0)
    mask = bytes(data[at + n * 4:at + n * 4 + ((mask_len + 7) >> 3)])
    return Experience(
        seq=seq, game_id=meta.get("game_id"), player_id=meta.get("player_id"), turn=meta.get("turn"),
        action=meta.get("action"), reward=meta.get("reward"), done=meta.get("done"), state=state,
        state_shape=shape, legal_mask=mask, mask_len=mask_len, timestamp=ts,
    )


def decode_experience_batch(data):
    """A version-2 batch message into an ExperienceBatch."""
    magic, version, flags, head_len = _BATCH_HEAD.unpack_from(data, 0)
    if magic != _BATCH_V2_MAGIC or version != 2:
        raise ValueError("not a version-2 experience batch")
    head = json.loads(bytes(data[8:8 + head_len]))
    body = memoryview(data)[8 + head_len:]
    if flags & _BATCH_FLAG_DEFLATE:
        import zlib

        body = memoryview(zlib.decompress(bytes(body), -15))
    records = []
    p = 0
    end = len(body)
    while p < end:
        seq, n = _F64_U32.unpack_from(body, p)
        records.append(decode_experience(body[p + 12:p + 12 + n], int(seq)))
        p += 12 + n
    if len(records) != head.get("count"):
        raise ValueError("experience batch: head says %r records, body holds %d" % (head.get("count"), len(records)))
    return ExperienceBatch(records, head.get("seq_first"), head.get("seq_last"), head.get("dropped", 0), head.get("missed", 0), head.get("server_time"))


def _read_message(conn, max_bytes):
    """Next WebSocket data message as (is_text, bytes), or None at EOF. Answers pings and close."""
    message = bytearray()
    text = None  # set by the message's first frame; a continuation before it is ignored
    while True:
        head = conn._recv_exact(2)
        if head is None:
            return None
        fin, opcode, masked, n = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
        if n == 126:
            ext = conn._recv_exact(2)
            if ext is None:
                return None
            (n,) = _WS_LEN16.unpack(ext)
        elif n == 127:
            ext = conn._recv_exact(8)
            if ext is None:
                return None
            (n,) = _WS_LEN64.unpack(ext)
        if n > max_bytes:
            raise ConnectionError("server WebSocket frame of %d bytes exceeds %d" % (n, max_bytes))
        key = conn._recv_exact(4) if masked else None
        payload = conn._recv_exact(n) if n else b""
        if payload is None or (masked and key is None):
            return None
        if key:
            payload = _ws_mask(payload, key)
        if opcode == 0x9:  # ping: answer with the same payload
            conn._ws_send(0xA, payload)
        elif opcode == 0x8:  # close: echo it, then treat as EOF
            try:
                conn._ws_send(0x8, payload[:2])
            except OSError:
                pass
            return None
        elif opcode in (0x1, 0x2) or (opcode == 0x0 and text is not None):
            if opcode != 0x0:
                text = opcode == 0x1
            if fin and not message:
                return text, payload  # unfragmented: no copy (experience batches are large)
            message += payload
            if len(message) > max_bytes:
                raise ConnectionError("server WebSocket message exceeds %d bytes" % max_bytes)
            if fin:
                return text, bytes(message)
        # 0xA pong, a stray continuation and unknown opcodes: ignore


class ExperienceConsumer(object):
    """Consume ``/experience``: ``for batch in consumer:`` yields ExperienceBatch objects.

    Filters run on the server: ``games`` / ``players`` (lists of ids), ``min_turn`` /
    ``max_turn``, ``reward_min`` / ``reward_max``, ``terminal_only``, ``sample_rate`` (0–1),
    ``batch_size``. ``start`` is ``"live"``, ``"earliest"`` (the oldest record the server
    retains) or a sequence number. A wrong filter raises ValueError naming the field.

    A daemon thread reads the socket into a bounded queue (when the trainer falls behind, the
    socket stops being read and the server's per-consumer queue bound applies: it drops the
    oldest batches and reports them in ``dropped``). A lost connection is retried with
    exponential backoff and jitter and resumes after the last batch received, so no record is
    skipped or repeated except what ``dropped`` / ``missed`` report.
    """

    def __init__(self, url, token=None, games=None, players=None, min_turn=None, max_turn=None,
                 reward_min=None, reward_max=None, terminal_only=False, sample_rate=1.0,
                 batch_size=None, start="live"):
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname or parts.port is None:
            raise ValueError("url must be ws://host:port/experience (got %r)" % (url,))
        if not (start in ("live", "earliest") or (isinstance(start, int) and not isinstance(start, bool) and start >= 0)):
            raise ValueError("start: must be 'live', 'earliest' or a sequence number (got %r)" % (start,))
        self._target = {"scheme": parts.scheme, "host": parts.hostname, "port": parts.port, "path": parts.path or "/experience"}
        self._token = token
        self._filters = {}
        self._set_filters(dict(games=games, players=players, min_turn=min_turn, max_turn=max_turn, reward_min=reward_min,
                               reward_max=reward_max, terminal_only=terminal_only, sample_rate=sample_rate, batch_size=batch_size))
        self._start = start
        self._next_seq = None  # after the first batch: resume here
        self._queue = collections.deque()
        self._queue_max = 64
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._reply = None
        self._reply_event = threading.Event()
        self._awaiting = False
        self._conn = None
        self._closed = False
        self._error = None
        self._counts = {"batches": 0, "records": 0, "dropped": 0, "missed": 0, "reconnects": 0, "duplicates_skipped": 0}
        self.last_status = None
        # Connect once here so a refused filter fails the constructor, not the first next().
        self._conn = self._connect()
        self._thread = threading.Thread(target=self._run, name="ringcast-experience", daemon=True)
        self._thread.start()

    # ── public ──

    def __iter__(self):
        return self

    def __next__(self):
        with self._cond:
            while not self._queue:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise StopIteration
                self._cond.wait(0.5)
            batch = self._queue.popleft()
            self._cond.notify_all()
        return batch

    next = __next__

    def stats(self, timeout=5.0):
        """The server's counters for this consumer (delivered, filtered, dropped, missed, lag,
        bytes, window, filters, ...) plus this client's own (``client``)."""
        reply = self._request({"type": "stats"}, timeout)
        reply = dict(reply)
        reply["client"] = dict(self._counts)
        return reply

    def configure(self, timeout=5.0, **filters):
        """Change filters live, on the same connection. Returns the server's answer: ``filters`` (all of
        them, as now in force) and ``cursor`` (the first sequence number the new filters decide on;
        batches already on their way may hold earlier records that passed the old ones)."""
        for k in filters:
            if k not in EXPERIENCE_FILTERS:
                raise TypeError("configure: unknown filter %r (known: %s)" % (k, ", ".join(EXPERIENCE_FILTERS)))
        msg = {"type": "configure"}
        msg.update({k: v for k, v in filters.items()})
        reply = self._request(msg, timeout)
        self._set_filters(filters)
        return reply

    def close(self):
        self._closed = True
        conn = self._conn
        if conn is not None:
            conn.close(graceful=True)
        with self._cond:
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ── internals ──

    def _set_filters(self, filters):
        for k, v in filters.items():
            if v is None or (k == "terminal_only" and v is False) or (k == "sample_rate" and v == 1.0):
                self._filters.pop(k, None)
            else:
                self._filters[k] = v

    def _query(self):
        q = [("v", "2")]
        for k, v in self._filters.items():
            if k in ("games", "players"):
                v = [v] if isinstance(v, str) else list(v)
                v = ",".join(str(x) for x in v)
            elif isinstance(v, bool):
                v = "true" if v else "false"
            q.append((k, str(v)))
        start = self._start if self._next_seq is None else self._next_seq
        q.append(("start", str(start)))
        from urllib.parse import urlencode

        return urlencode(q)

    def _connect(self):
        target = dict(self._target)
        target["path"] = target["path"] + "?" + self._query()
        try:
            conn = _open(target, self._token, 10.0)
        except ConnectionError as e:
            text = str(e)
            if " 400 " in text or " 401 " in text:
                detail = text.split("{", 1)
                message = text
                if len(detail) == 2:
                    try:
                        message = json.loads("{" + detail[1]).get("error", text)
                    except ValueError:
                        pass
                raise (PermissionError if " 401 " in text else ValueError)(message)
            raise
        conn.sock.settimeout(1.0)
        return conn

    def _request(self, msg, timeout):
        deadline = time.monotonic() + timeout
        with self._request_lock:
            self._awaiting = True
            try:
                with self._cond:
                    self._cond.notify_all()  # a reader blocked on a full queue must read the answer
                while True:
                    # Between connections (the reader reconnects) wait for the next one and ask there.
                    conn = self._conn
                    if self._closed:
                        raise ConnectionError("experience consumer is closed")
                    if time.monotonic() > deadline:
                        raise TimeoutError("no answer to %s within %.1f s" % (msg["type"], timeout))
                    if conn is None or conn.dead:
                        time.sleep(0.05)
                        continue
                    self._reply_event.clear()
                    self._reply = None
                    try:
                        with self._send_lock:
                            conn._ws_send(0x1, json.dumps(msg).encode("utf-8"))
                    except OSError:
                        time.sleep(0.05)
                        continue
                    if self._reply_event.wait(max(0.0, deadline - time.monotonic())):
                        break
            finally:
                self._awaiting = False
            reply = self._reply
        if reply.get("type") == "error":
            field = reply.get("field")
            raise ValueError(reply.get("error") if not field or reply.get("error", "").startswith(field) else "%s: %s" % (field, reply.get("error")))
        return reply

    def _run(self):
        backoff = 0.1
        conn = self._conn
        while not self._closed:
            if conn is None:
                try:
                    conn = self._connect()
                    self._conn = conn
                    self._counts["reconnects"] += 1
                    backoff = 0.1
                except (OSError, ConnectionError) as e:
                    log.debug("experience reconnect failed: %s", e)
                    time.sleep(backoff * (0.5 + random.random()))
                    backoff = min(backoff * 2, 5.0)
                    continue
                except (ValueError, PermissionError) as e:  # refused for good (bad filter, token)
                    self._fail(e)
                    return
            try:
                while not self._closed:
                    msg = _read_message(conn, 256 << 20)
                    if msg is None:
                        break
                    self._handle(*msg)
            except (OSError, ConnectionError, ValueError) as e:
                if not self._closed:
                    log.debug("experience connection lost: %s", e)
            self._conn = None
            conn.close(graceful=False)
            conn = None

    def _fail(self, error):
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def _handle(self, is_text, data):
        if is_text:
            try:
                msg = json.loads(data.decode("utf-8"))
            except ValueError:
                return
            t = msg.get("type")
            if t == "experience_status":
                self.last_status = msg
            elif t in ("stats", "configured", "error"):
                self._reply = msg
                self._reply_event.set()
            return
        batch = decode_experience_batch(data)
        if self._next_seq is not None and batch.records and batch.records[0].seq < self._next_seq:
            # Never hand a record over twice (the server already skips them; this is the client's guard).
            kept = [r for r in batch.records if r.seq >= self._next_seq]
            self._counts["duplicates_skipped"] += len(batch.records) - len(kept)
            if not kept:
                return
            batch.records = kept
            batch.seq_first = kept[0].seq
        self._next_seq = batch.seq_last + 1
        c = self._counts
        c["batches"] += 1
        c["records"] += len(batch.records)
        c["dropped"] += batch.dropped
        c["missed"] += batch.missed
        with self._cond:
            # While a stats/configure answer is awaited, keep reading past the bound (it is behind these batches).
            while len(self._queue) >= self._queue_max and not self._closed and not self._awaiting:
                self._cond.wait(0.5)  # the trainer is behind: stop reading, the server's bound applies
            self._queue.append(batch)
            self._cond.notify_all()
