"""One beat at a time: a beat holds a Redis lock while it runs; a second one waits for it.

Two beats would send every periodic task twice (the tasks are safe to repeat, but the reaper and
dispatcher would do double work and the schedule would drift). Kubernetes runs one beat with
the Recreate strategy, yet a rollout, a stuck node or an operator's second copy can still
start another; this lock makes that one a standby. The lock expires LOCK_SECONDS after its
holder stops renewing it, so a killed beat's successor takes over within that bound.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import redis
from celery.signals import beat_init
from django.conf import settings

logger = logging.getLogger(__name__)

LOCK_NAME = "reverie:beat"
LOCK_SECONDS = 30
RENEW_SECONDS = 10


def acquire(client: redis.Redis, stop: threading.Event) -> redis.lock.Lock | None:
    """Wait until this process holds the beat lock; None if `stop` was set first."""
    lock = client.lock(LOCK_NAME, timeout=LOCK_SECONDS, thread_local=False)
    waited = False
    while not stop.is_set():
        if lock.acquire(blocking=False):
            return lock
        if not waited:
            logger.warning("another beat holds %s; waiting to take over", LOCK_NAME)
            waited = True
        stop.wait(1.0)
    return None


def keep(lock: redis.lock.Lock, stop: threading.Event, on_lost) -> None:
    """Renew the lock until `stop`; call `on_lost` if it was taken from us."""
    while not stop.wait(RENEW_SECONDS):
        try:
            lock.reacquire()
        except redis.exceptions.LockError:
            # Not ours any more. Gone altogether (a restarted Redis keeps nothing, or it
            # expired while this beat stalled) and nobody else took it: take it again.
            # Held by another beat: that one runs the schedule now.
            try:
                retaken = lock.acquire(blocking=False)
            except redis.exceptions.RedisError:
                retaken = False
            if retaken:
                logger.warning("the beat lock was gone (a Redis restart?); took it again")
                continue
            logger.error("lost the beat lock to another beat; stopping this beat")
            on_lost()
            return
        except redis.exceptions.RedisError as exc:  # Redis down: beat cannot send either
            logger.warning("renewing the beat lock failed: %s", exc)


def _stop_this_beat() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@beat_init.connect
def hold_the_beat_lock(sender=None, **kwargs) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    stop = threading.Event()
    lock = acquire(client, stop)
    if lock is None:
        return
    logger.info("this beat holds %s", LOCK_NAME)
    threading.Thread(
        target=keep, args=(lock, stop, _stop_this_beat), name="beat-lock", daemon=True
    ).start()
