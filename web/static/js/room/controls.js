// Your own controls in the room: microphone, camera, screen sharing and the raised hand, and how
// the control bar shows them (including the low-bandwidth and sound-only toggles).

import { t } from "../i18n.js";
import { setIcon, setLabel } from "../dom.js";
import { state, local, rtc, session, notices } from "./state.js";
import { say } from "./status.js";
import { showSelf } from "./stage.js";
import { enqueue, publishScreen } from "./peers.js";
import { addDevice, stopTrack } from "./devices.js";

const $ = (id) => document.getElementById(id);

export function setMuted(muted, tell = true) {
  state.muted = muted;
  if (!muted && notices.mute && $("room-status").textContent === notices.mute) say("");
  if (local.mic) local.mic.enabled = !muted;
  if (tell && session.signalling) session.signalling.send({ type: "update", muted });
  renderOwnControls();
}

export async function toggleMute() {
  if (state.view !== "room") return;
  $("mute-button").classList.remove("attention");
  if (state.muted && !local.mic && !(await addDevice("audio"))) return;
  setMuted(!state.muted);
}

export async function toggleCamera() {
  if (state.view !== "room") return;
  if (!state.camera && !local.camera && !(await addDevice("video"))) return;
  state.camera = !state.camera;
  if (local.camera) local.camera.enabled = state.camera;
  if (local.small) local.small.enabled = state.camera;
  session.signalling.send({ type: "update", camera: state.camera });
  renderOwnControls();
  showSelf();
}

async function toggleScreen() {
  if (state.screenSharing) {
    stopScreen();
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
    say(t("This browser cannot share the screen."), "problem");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
  } catch (error) {
    if (error.name === "NotAllowedError" || error.name === "AbortError") say(t("Screen sharing was cancelled."));
    else say(t("The screen could not be shared: {reason}", { reason: error.message || error.name }), "problem");
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track) return;
  if ("contentHint" in track) track.contentHint = "detail";
  track.addEventListener("ended", () => stopScreen());
  local.screen = track;
  state.screenSharing = true;
  renderOwnControls();
  say(t("You are sharing your screen. Everyone sees it."));
  const generation = rtc.generation;
  enqueue(async () => {
    if (generation !== rtc.generation || !state.screenSharing) return;
    try {
      await publishScreen(generation);
    } catch (error) {
      if (error.code === "closed") return;
      say(t("The screen could not be shared: {reason}", { reason: error.message }), "problem");
      stopScreen();
    }
  });
}

function stopScreen() {
  if (!state.screenSharing) return;
  state.screenSharing = false;
  stopTrack(local.screen);
  local.screen = null;
  if (rtc.screen) {
    rtc.screen.pc.close();
    rtc.screen = null;
  }
  if (session.signalling) session.signalling.send({ type: "unpublish", stream: "screen" });
  renderOwnControls();
  say(t("You stopped sharing your screen."));
}

function toggleHand() {
  state.hand = !state.hand;
  session.signalling.send({ type: "update", hand: state.hand });
  renderOwnControls();
  if (state.hand) say(t("Your hand is raised: the chair sees it in the list."));
}

export function renderOwnControls() {
  // Each toggle says what pressing it does; aria-pressed says the state (muted, camera off…).
  const mute = $("mute-button");
  mute.setAttribute("aria-pressed", String(state.muted));
  setIcon(mute, state.muted ? "i-mic-off" : "i-mic");
  setLabel(mute, state.muted ? t("Unmute") : t("Mute"));
  mute.title = state.muted ? t("Your microphone is off. Press to turn it on (M)") : t("Turn your microphone off (M)");
  const camera = $("camera-button");
  camera.setAttribute("aria-pressed", String(!state.camera));
  setIcon(camera, state.camera ? "i-camera" : "i-camera-off");
  setLabel(camera, state.camera ? t("Stop camera") : t("Start camera"));
  camera.title = state.camera ? t("Turn your camera off (V)") : t("Your camera is off. Press to turn it on (V)");
  const screen = $("screen-button");
  screen.setAttribute("aria-pressed", String(state.screenSharing));
  setLabel(screen, state.screenSharing ? t("Stop sharing") : t("Share screen"));
  screen.title = state.screenSharing ? t("Stop sharing your screen") : t("Show your screen to everyone");
  const hand = $("hand-button");
  hand.setAttribute("aria-pressed", String(state.hand));
  setLabel(hand, state.hand ? t("Lower hand") : t("Raise hand"));
  hand.title = state.hand ? t("Lower your hand") : t("Ask for the floor");
  const low = $("low-bandwidth-button");
  low.setAttribute("aria-pressed", String(state.weakLine));
  setLabel(low, t("Low bandwidth"));
  low.title = t("Receive smaller pictures on a weak line");
  const audioOnly = $("audio-only-button");
  audioOnly.hidden = !state.weakLine;
  audioOnly.setAttribute("aria-pressed", String(state.audioOnly));
  setLabel(audioOnly, t("Sound only"));
  audioOnly.title = t("Receive no video at all, only the sound");
  showSelf();
}

export function setupControls() {
  $("mute-button").addEventListener("click", toggleMute);
  $("camera-button").addEventListener("click", toggleCamera);
  $("screen-button").addEventListener("click", toggleScreen);
  $("hand-button").addEventListener("click", toggleHand);
}
