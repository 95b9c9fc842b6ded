"""The data-channel protocol between the play page and the worker: versioned JSON messages.

Page -> worker (unordered, no retransmits; one at once for every key or button change, and 60
a second while the player plays, for mouse movement and to repair a lost message):
    {"v": 1, "type": "input", "seq": 17, "t": 1234.5, "keys": ["KeyW"], "dx": 3, "dy": -1,
     "buttons": [0], "wheel": 0}
  keys and buttons are what is held now; dx, dy and wheel are movement since the previous
  message; seq grows by one per message; t is the page's clock (ms), echoed for round trips.
    {"v": 1, "type": "ping", "t": 1234.5}
    {"v": 1, "type": "photon", "ms": 66.5}
  the page's own key-to-photon time for one change (key press to the first presented frame its
  ack names), reported so that the worker's metrics show what players see.
Worker -> page:
    {"v": 1, "type": "ack", "seq": 17, "frame": 240, "pts": 1080000,
     "hops": {"changed": 16, "recv": ..., "take": ..., "step": ..., "push": ..., "encode": ...,
              "sent": ...}}
  frame 240 (its video pts on the 90 kHz clock) is the first frame sent that reflects seq 17 and
  all earlier ones, so the page can time key-to-photon latency. It goes out once the frame's
  packets have. `hops` (present when a message since the previous frame changed the held keys
  or buttons) times that change through the worker: `changed` is the message's seq, the rest
  are Unix times in ms: received, taken by the frame's step, step done, frame converted and
  queued, picked up by the encoder, packets sent.
    {"v": 1, "type": "pong", "t": 1234.5}

The worker keeps only the latest state ("latest-state" contract): held keys and buttons are
replaced by each newer message, mouse and wheel deltas add up until a frame takes them. A key or
button held at any moment since the previous frame is in the next frame's input even when it was
let go before that frame began, so a tap shorter than a frame still reaches the model. Anything
malformed, oversized or older than what was already applied is dropped and counted; nothing in
here raises past `InputFolder.receive`, so a bad message can never end a session. This is the
only validation browser input gets: a frame's `FoldedInput` goes from here to the session's
`inference.actions.ActionEncoder`, which turns it into the model's action vector.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
MAX_MESSAGE_BYTES = 1024
MAX_KEYS = 32
MAX_KEY_CODE_LEN = 32
MOUSE_BUTTONS = range(5)
# One message carries at most this much pointer travel (CSS pixels) or wheel notches; more is
# clamped, so a hostile page cannot spin the camera by any amount in one frame.
MAX_MOUSE_DELTA = 2000.0
MAX_WHEEL_DELTA = 50.0
MAX_SEQ = 2**53
INPUT_FIELDS = frozenset({"v", "type", "seq", "t", "keys", "dx", "dy", "buttons", "wheel"})
PING_FIELDS = frozenset({"v", "type", "t"})
PHOTON_FIELDS = frozenset({"v", "type", "ms"})
MAX_PHOTON_MS = 60_000.0


class ProtocolError(ValueError):
    """A data-channel message the worker cannot take; `kind` names the counter it lands in."""

    def __init__(self, message: str, kind: str = "malformed"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class InputMessage:
    """One validated input message."""

    seq: int
    t: float
    keys: frozenset[str] = frozenset()
    dx: float = 0.0
    dy: float = 0.0
    buttons: frozenset[int] = frozenset()
    wheel: float = 0.0

    @property
    def active(self) -> bool:
        """Whether the player is doing anything (an empty message does not keep a session)."""
        return bool(self.keys or self.buttons or self.dx or self.dy or self.wheel)


@dataclass(frozen=True)
class PingMessage:
    """A round-trip probe; the worker echoes `t` straight back."""

    t: float


@dataclass(frozen=True)
class PhotonMessage:
    """The page's key-to-photon time (ms) for one change, for the worker's metrics."""

    ms: float


def _number(value: Any, what: str) -> float:
    try:
        # A JSON integer past float's range (1e309 written out) overflows here, not in json.
        number = float(value) if isinstance(value, int | float) else math.nan
    except OverflowError:
        number = math.inf
    if isinstance(value, bool) or not math.isfinite(number):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        raise ProtocolError(f"{what} must be a finite number, got {shown}")
    return number


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


def _list(value: Any, what: str, limit: int) -> list:
    if not isinstance(value, list):
        raise ProtocolError(f"{what} must be a list, got {type(value).__name__}")
    if len(value) > limit:
        raise ProtocolError(f"{what} lists {len(value)} entries; at most {limit}")
    return value


def decode(data: str | bytes) -> InputMessage | PingMessage | PhotonMessage:
    """Parse and validate one message from the page; raises ProtocolError with the reason."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"message of {len(data)} bytes; at most {MAX_MESSAGE_BYTES}", kind="oversized"
        )
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("a message must be a JSON object")
    if raw.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {raw.get('v')!r}; this is {VERSION}")
    kind = raw.get("type")
    if kind == "ping":
        _no_unknown(raw, PING_FIELDS)
        return PingMessage(t=_number(raw.get("t"), "t"))
    if kind == "photon":
        return _photon(raw)
    if kind != "input":
        raise ProtocolError(f"unknown message type {kind!r}")
    return _input(raw)


def _photon(raw: dict) -> PhotonMessage:
    _no_unknown(raw, PHOTON_FIELDS)
    ms = _number(raw.get("ms"), "ms")
    if not 0 <= ms <= MAX_PHOTON_MS:
        raise ProtocolError(f"ms must be within 0..{MAX_PHOTON_MS:.0f}, got {ms!r}")
    return PhotonMessage(ms=ms)


def _input(raw: dict) -> InputMessage:
    _no_unknown(raw, INPUT_FIELDS)
    seq = raw.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < MAX_SEQ:
        raise ProtocolError(f"seq must be a non-negative integer, got {seq!r}")
    keys = _list(raw.get("keys", []), "keys", MAX_KEYS)
    for key in keys:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CODE_LEN:
            raise ProtocolError(f"keys must be KeyboardEvent.code strings, got {key!r}")
    buttons = _list(raw.get("buttons", []), "buttons", len(MOUSE_BUTTONS))
    for button in buttons:
        if isinstance(button, bool) or not isinstance(button, int) or button not in MOUSE_BUTTONS:
            raise ProtocolError(f"buttons must be integers 0..4, got {button!r}")
    return InputMessage(
        seq=seq,
        t=_number(raw.get("t", 0), "t"),
        keys=frozenset(keys),
        dx=_clamp(_number(raw.get("dx", 0), "dx"), MAX_MOUSE_DELTA),
        dy=_clamp(_number(raw.get("dy", 0), "dy"), MAX_MOUSE_DELTA),
        buttons=frozenset(buttons),
        wheel=_clamp(_number(raw.get("wheel", 0), "wheel"), MAX_WHEEL_DELTA),
    )


def _no_unknown(raw: dict, allowed: frozenset[str]) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise ProtocolError(f"unknown field(s) {sorted(map(str, unknown))}")


def encode_input(
    seq: int, t: float, keys=(), dx: float = 0.0, dy: float = 0.0, buttons=(), wheel: float = 0.0
) -> str:
    """The page's input message (used by tests and the benchmark's players)."""
    return json.dumps(
        {
            "v": VERSION,
            "type": "input",
            "seq": seq,
            "t": t,
            "keys": sorted(keys),
            "dx": dx,
            "dy": dy,
            "buttons": sorted(buttons),
            "wheel": wheel,
        }
    )


def encode_ack(seq: int, frame: int, pts: int, hops: dict[str, float] | None = None) -> str:
    """Frame `frame` (video pts `pts`) is the first sent that reflects input `seq`; `hops`
    times the change it carries through the worker (see the module docstring)."""
    message: dict[str, Any] = {"v": VERSION, "type": "ack", "seq": seq, "frame": frame, "pts": pts}
    if hops is not None:
        message["hops"] = hops
    return json.dumps(message)


def encode_pong(t: float) -> str:
    return json.dumps({"v": VERSION, "type": "pong", "t": t})


@dataclass(frozen=True)
class FoldedInput:
    """What one frame's step sees: the held state plus deltas accumulated since the last frame.

    `seq` is the newest message folded in for the first time by this frame, None when no new
    message arrived since the previous frame. `changed_seq` is the first of those messages that
    changed the held keys or buttons, `changed_at` the time.time() it arrived (None: no change).
    """

    keys: frozenset[str] = frozenset()
    dx: float = 0.0
    dy: float = 0.0
    buttons: frozenset[int] = frozenset()
    wheel: float = 0.0
    seq: int | None = None
    changed_seq: int | None = None
    changed_at: float | None = None


@dataclass
class InputFolder:
    """Latest-state memory of one session's input, written by the network and read per frame.

    `receive` runs on the streaming loop and `take` on the device loop, hence the lock; a frame
    reflects everything received before its `take`. `on_change`, when set, is called (on the
    receiving thread, outside the lock) after a message changed the held keys or buttons or
    turned the wheel: the device loop uses it to bring the next frame forward.
    """

    dropped: Counter = field(default_factory=Counter)
    last_activity: float | None = None  # time.time() of the last message that did something
    _keys: frozenset[str] = frozenset()
    _buttons: frozenset[int] = frozenset()
    _dx: float = 0.0
    _dy: float = 0.0
    _wheel: float = 0.0
    _seq: int = -1
    _taken_seq: int = -1
    # Pressed since the last take and not held at it, so a tap released before the next take
    # still counts; a key the last frame already saw is not kept once let go (a change of
    # direction must not hold both directions for a frame).
    _pressed_keys: frozenset[str] = frozenset()
    _pressed_buttons: frozenset[int] = frozenset()
    _seen_keys: frozenset[str] = frozenset()
    _seen_buttons: frozenset[int] = frozenset()
    _changed: tuple[int, float] | None = None  # (seq, time.time()) of the first change since
    on_change: Callable[[], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, data: str | bytes) -> PingMessage | InputMessage | PhotonMessage | None:
        """Decode and apply one message; None when it was dropped (and counted)."""
        try:
            message = decode(data)
        except ProtocolError as exc:
            self.dropped[exc.kind] += 1
            return None
        if isinstance(message, InputMessage) and not self.apply(message):
            return None
        return message

    def apply(self, message: InputMessage) -> bool:
        """Fold one input message in; False (counted as stale) when it is not newer."""
        with self._lock:
            if message.seq <= self._seq:
                # Unordered channel: a late message carries an older held state; applying it
                # would undo a newer one, so it is dropped, deltas and all.
                self.dropped["stale"] += 1
                return False
            now = time.time()
            changed = (message.keys, message.buttons) != (self._keys, self._buttons)
            self._seq = message.seq
            self._keys, self._buttons = message.keys, message.buttons
            self._pressed_keys |= message.keys - self._seen_keys
            self._pressed_buttons |= message.buttons - self._seen_buttons
            self._dx += message.dx
            self._dy += message.dy
            self._wheel += message.wheel
            if changed and self._changed is None:
                self._changed = (message.seq, now)
            if message.active:
                self.last_activity = now
        if (changed or message.wheel) and self.on_change is not None:
            self.on_change()
        return True

    def release(self) -> None:
        """Let go of every held key and button (the peer went away; nothing stays pressed)."""
        with self._lock:
            self._keys, self._buttons = frozenset(), frozenset()
            self._pressed_keys, self._pressed_buttons = frozenset(), frozenset()

    def restart(self) -> None:
        """Forget the old page: its sequence numbers, held state and unread deltas."""
        with self._lock:
            # A new page counts seq from 1 again; keeping the old high-water mark would drop
            # all of its input as stale.
            self._seq = self._taken_seq = -1
            self._keys, self._buttons = frozenset(), frozenset()
            self._pressed_keys, self._pressed_buttons = frozenset(), frozenset()
            self._seen_keys, self._seen_buttons = frozenset(), frozenset()
            self._changed = None
            self._dx = self._dy = self._wheel = 0.0

    def take(self) -> FoldedInput:
        """The input for the next frame: what is held now and whatever was pressed since the
        previous frame; movement deltas and the presses start again from zero."""
        with self._lock:
            new_seq = self._seq if self._seq > self._taken_seq else None
            self._taken_seq = self._seq
            changed_seq, changed_at = self._changed or (None, None)
            folded = FoldedInput(
                keys=self._keys | self._pressed_keys,
                dx=self._dx,
                dy=self._dy,
                buttons=self._buttons | self._pressed_buttons,
                wheel=self._wheel,
                seq=new_seq,
                changed_seq=changed_seq,
                changed_at=changed_at,
            )
            self._dx = self._dy = self._wheel = 0.0
            self._pressed_keys, self._pressed_buttons = frozenset(), frozenset()
            self._seen_keys, self._seen_buttons = self._keys, self._buttons
            self._changed = None
            return folded
