"""One beat at a time, on the real Redis: a second beat waits, then takes over."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

from webapp import beat_lock


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def test_a_second_beat_waits_until_the_first_lets_go(monkeypatch):
    monkeypatch.setattr(beat_lock, "LOCK_NAME", "reverie:test-beat-lock")
    stop = threading.Event()
    first = beat_lock.acquire(client(), stop)
    assert first is not None
    second: dict = {}
    waiting = threading.Thread(target=lambda: second.update(lock=beat_lock.acquire(client(), stop)))
    waiting.start()
    waiting.join(2.5)
    assert waiting.is_alive() and not second  # still waiting while the first holds it
    first.release()  # the first beat stopped (or its lock expired)
    waiting.join(5)
    assert second["lock"] is not None and second["lock"].owned()
    second["lock"].release()


def test_a_beat_whose_lock_was_taken_stops(monkeypatch):
    monkeypatch.setattr(beat_lock, "LOCK_NAME", "reverie:test-beat-lock-2")
    monkeypatch.setattr(beat_lock, "RENEW_SECONDS", 0.1)
    stop = threading.Event()
    lock = beat_lock.acquire(client(), stop)
    client().delete("reverie:test-beat-lock-2")  # expired while this beat was stalled...
    other = beat_lock.acquire(client(), stop)  # ...and a standby beat took over
    lost = threading.Event()
    beat_lock.keep(lock, stop, lost.set)
    assert lost.is_set()
    other.release()


def test_a_beat_whose_lock_vanished_with_a_redis_restart_takes_it_again(monkeypatch):
    monkeypatch.setattr(beat_lock, "LOCK_NAME", "reverie:test-beat-lock-3")
    monkeypatch.setattr(beat_lock, "RENEW_SECONDS", 0.1)
    stop, lost = threading.Event(), threading.Event()
    lock = beat_lock.acquire(client(), stop)
    keeping = threading.Thread(target=beat_lock.keep, args=(lock, stop, lost.set))
    keeping.start()
    client().delete("reverie:test-beat-lock-3")  # a restarted Redis keeps nothing
    keeping.join(0.5)
    assert not lost.is_set() and lock.owned()
    stop.set()
    keeping.join(5)
    lock.release()
