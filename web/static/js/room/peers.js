// The WebRTC connections to the media service: publishing the camera (two layers and the
// microphone) and the screen, subscribing to the slots, and starting over after a failure.
// Each start belongs to a generation; anything finishing for an older generation is dropped.

import { t } from "../i18n.js";
import * as media from "../media.js";
import { state, local, rtc, session } from "./state.js";
import { say } from "./status.js";
import { ensureSlotElement } from "./stage.js";

const $ = (id) => document.getElementById(id);

export function closePeers() {
  for (const name of ["camera", "screen", "sub"]) {
    if (rtc[name]) {
      try { rtc[name].pc.close(); } catch (error) { /* closed */ }
      rtc[name] = null;
    }
  }
  clearTimeout(rtc.retryTimer);
}

/** Close both directions and publish and subscribe again (after welcome, rejoin or a failure). */
export function restartMedia(delay) {
  rtc.generation += 1;
  const generation = rtc.generation;
  closePeers();
  rtc.retryTimer = setTimeout(() => enqueue(() => startMedia(generation)), delay);
}

/** Run `task` after the tasks queued before it, one at a time. */
export function enqueue(task) {
  rtc.queue = rtc.queue.then(task).catch(() => {});
  return rtc.queue;
}

async function startMedia(generation) {
  if (generation !== rtc.generation || state.view !== "room") return;
  $("connection-status").textContent = t("Connecting the picture and the sound…");
  try {
    await publishCamera(generation);
    if (state.screenSharing && local.screen && local.screen.readyState === "live") await publishScreen(generation);
    await startSubscription(generation);
    if (generation === rtc.generation) {
      $("connection-status").textContent = "";
      $("connection-status").dataset.state = "connected";
    }
  } catch (error) {
    if (generation !== rtc.generation || error.code === "closed") return; // a reconnection takes over
    console.warn("media", error);
    mediaFailed(generation, error.code ? error.message : ""); // the server's words (translated), not the browser's
  }
}

function mediaFailed(generation, reason) {
  if (generation !== rtc.generation || state.view !== "room" || state.connection !== "connected") return;
  const now = Date.now();
  rtc.failures = rtc.failures.filter((at) => now - at < 60000);
  rtc.failures.push(now);
  const box = $("connection-status");
  box.dataset.state = "reconnecting";
  box.textContent = t("The picture and the sound were interrupted. Reconnecting…");
  if (reason) say(reason, "problem");
  if (rtc.failures.length > 3) {
    rtc.failures = [];
    session.signalling.restart(); // a fresh connection from scratch
    return;
  }
  restartMedia(Math.min(10000, 1000 * 2 ** (rtc.failures.length - 1)));
}

function watch(pc, generation) {
  let timer = 0;
  pc.addEventListener("connectionstatechange", () => {
    clearTimeout(timer);
    if (generation !== rtc.generation) return;
    if (pc.connectionState === "failed") mediaFailed(generation);
    if (pc.connectionState === "disconnected") timer = setTimeout(() => {
      if (pc.connectionState === "disconnected") mediaFailed(generation);
    }, 8000);
  });
}

async function publishCamera(generation) {
  const tracks = [];
  if (local.camera && local.camera.readyState === "live") {
    if (!local.small || local.small.readyState !== "live") local.small = await media.smallLayer(local.camera);
    local.small.enabled = state.camera;
    tracks.push({ track: local.camera, layer: "camera", maxBitrate: state.weakLine ? media.WEAK_FULL_BITRATE : media.FULL_BITRATE });
    tracks.push({ track: local.small, layer: "camera_small", maxBitrate: media.SMALL_BITRATE });
  }
  if (local.mic && local.mic.readyState === "live") tracks.push({ track: local.mic, layer: "audio" });
  if (!tracks.length) return; // listening only
  const published = await media.publish(session.signalling, { stream: "camera", tracks, iceServers: session.iceServers });
  if (generation !== rtc.generation) {
    published.pc.close();
    return;
  }
  if (rtc.camera) rtc.camera.pc.close();
  rtc.camera = published;
  watch(published.pc, generation);
}

export async function publishScreen(generation) {
  const published = await media.publish(session.signalling, {
    stream: "screen", tracks: [{ track: local.screen, layer: "screen", maxBitrate: media.SCREEN_BITRATE }], iceServers: session.iceServers,
  });
  if (generation !== rtc.generation || !state.screenSharing) {
    published.pc.close();
    return;
  }
  if (rtc.screen) rtc.screen.pc.close();
  rtc.screen = published;
  watch(published.pc, generation);
}

async function startSubscription(generation) {
  const sub = await media.subscribe(session.signalling, { iceServers: session.iceServers, onTrack: attachTrack });
  if (generation !== rtc.generation) {
    sub.pc.close();
    return;
  }
  if (rtc.sub) rtc.sub.pc.close();
  rtc.sub = sub;
  for (const slot of sub.slots) ensureSlotElement(slot.slot, slot.kind);
  watch(sub.pc, generation);
}

function attachTrack(slot, track) {
  const element = ensureSlotElement(slot, track.kind);
  element.srcObject = new MediaStream([track]);
  const playing = element.play();
  if (playing) playing.catch(() => {});
}

/** Republish the camera stream after a device was added (camera or microphone turned on late). */
export function republishCamera() {
  const generation = rtc.generation;
  return enqueue(async () => {
    if (generation !== rtc.generation || state.view !== "room" || state.connection !== "connected") return;
    try {
      await publishCamera(generation);
    } catch (error) {
      if (error.code !== "closed") mediaFailed(generation, error.code ? error.message : "");
    }
  });
}
