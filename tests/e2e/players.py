"""What a player does in the browser, for the end-to-end tests and bench/players.py."""

from __future__ import annotations

import os
import re

import numpy as np
from playwright.sync_api import Page, expect

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

MODEL_SIDE = 64  # the placeholder's picture; the video carries it upscaled by whole pixels

# Reads the <video> into a canvas and samples the centre of every model pixel: (64*64*3,) RGB.
CAPTURE_JS = """(side) => {
  const video = document.getElementById("video");
  const w = video.videoWidth, h = video.videoHeight, scale = w / side;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0);
  const data = g.getImageData(0, 0, w, h).data;
  const out = [];
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
    const i = ((Math.floor(y * scale + scale / 2)) * w + Math.floor(x * scale + scale / 2)) * 4;
    out.push(data[i], data[i + 1], data[i + 2]);
  }
  return out;
}"""

DECODED_JS = """async () => {
  const stream = window.reverie.stream;
  if (!stream || !stream.pc) return [0, performance.now()];
  const report = await stream.pc.getStats();
  let frames = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded;
  });
  return [frames, performance.now()];
}"""


def log_in(
    page: Page, url: str, username: str, password: str = "correct horse battery staple"
) -> None:
    page.goto(url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator(".world h2").first).to_be_visible()


def sign_up(page: Page, url: str, username: str) -> None:
    page.goto(url + "/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", "a long enough passphrase")
    page.fill("#id_password2", "a long enough passphrase")
    page.click("#signup-form button[type=submit]")
    expect(page.locator(".world h2").first).to_be_visible()


def queue_and_play(page: Page, world_name: str) -> str:
    """From the lobby: join the world's queue, confirm the offer, wait for video; session id."""
    page.click(f"text=Play {world_name}")
    page.click("#confirm", timeout=20_000)
    expect(page).to_have_url(re.compile(r"/play/[0-9a-f-]+/$"))
    wait_for_video(page)
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def wait_for_video(page: Page, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " return v.videoWidth > 0 && v.readyState >= 2; }",
        timeout=timeout,
    )


def start_playing(page: Page) -> None:
    """Click the picture: pointer lock where the browser grants it, keyboard capture always."""
    page.click("#screen", position={"x": 20, "y": 20})
    page.wait_for_function("() => window.reverie.input.playing")


def decoded_fps(page: Page, seconds: float) -> float:
    frames0, t0 = page.evaluate(DECODED_JS)
    page.wait_for_timeout(seconds * 1000)
    frames1, t1 = page.evaluate(DECODED_JS)
    return (frames1 - frames0) / ((t1 - t0) / 1000)


def capture(page: Page) -> np.ndarray:
    """The picture on screen at model resolution, float (64,64,3)."""
    values = page.evaluate(CAPTURE_JS, MODEL_SIDE)
    return np.asarray(values, dtype=np.float32).reshape(MODEL_SIDE, MODEL_SIDE, 3)


def best_shift(before: np.ndarray, after: np.ndarray, reach: int = 24):
    """(dy, dx, error) of the np.roll that best turns `before` into `after`."""
    errors = {
        (dy, dx): float(np.abs(np.roll(before, (dy, dx), axis=(0, 1)) - after).mean())
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    }
    dy, dx = min(errors, key=errors.get)
    return dy, dx, errors[(dy, dx)]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())
