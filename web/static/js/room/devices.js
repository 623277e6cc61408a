// This browser's camera and microphone: stopping the tracks, the microphone level meter (and
// the hint to someone speaking while muted), why a device cannot be used, and turning a device
// on in the room when the person joined without it.

import { t } from "../i18n.js";
import * as media from "../media.js";
import { state, local, notices } from "./state.js";
import { say } from "./status.js";
import { showSelf } from "./stage.js";
import { republishCamera } from "./peers.js";

const $ = (id) => document.getElementById(id);

export function stopTrack(track) {
  if (track) track.stop();
}

export function stopLocal() {
  if (local.meter) local.meter.stop();
  local.meter = null;
  for (const name of ["mic", "camera", "small", "screen"]) {
    stopTrack(local[name]);
    local[name] = null;
  }
}

/** Measure the level of the microphone `track` (replacing any meter running). */
export function meterMic(track) {
  if (local.meter) local.meter.stop();
  local.meter = new media.LevelMeter(track, onMicLevel);
}

function onMicLevel(level) {
  $("mic-level").value = level;
  // In the room: someone speaking with the microphone off is told so (at most every 30 s).
  if (state.view !== "room" || !state.muted) {
    local.speakingSince = 0;
    return;
  }
  const now = Date.now();
  if (level < 0.45) {
    local.speakingSince = 0;
  } else if (!local.speakingSince) {
    local.speakingSince = now;
  } else if (now - local.speakingSince > 1500 && now - local.hintAt > 30000) {
    local.hintAt = now;
    notices.mute = t("You seem to be speaking, but your microphone is off. Press Unmute (or the M key) to be heard.");
    say(notices.mute, "attention");
    $("mute-button").classList.add("attention");
  }
}

export const PROBLEMS = {
  both: {
    denied: () => t("The browser is blocking the camera and the microphone."),
    missing: () => t("No camera and no microphone were found on this computer."),
    busy: () => t("The camera and the microphone are being used by another program (for example Zalo or Zoom)."),
    other: () => t("The camera and the microphone could not be started."),
  },
  camera: {
    denied: () => t("The browser is blocking the camera."),
    missing: () => t("No camera was found on this computer."),
    busy: () => t("The camera is being used by another program (for example Zalo or Zoom)."),
    other: () => t("The camera could not be started."),
  },
  mic: {
    denied: () => t("The browser is blocking the microphone."),
    missing: () => t("No microphone was found on this computer."),
    busy: () => t("The microphone is being used by another program (for example Zalo or Zoom)."),
    other: () => t("The microphone could not be started."),
  },
};

/** Turn on a camera ("video") or microphone ("audio") the person joined without. */
export async function addDevice(kind) {
  const { stream, problem } = await media.openDevices({ video: kind === "video", audio: kind === "audio", cameraId: local.cameraId, micId: local.micId });
  const track = stream && (kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0]);
  if (!track) {
    const why = kind === "video" ? PROBLEMS.camera[problem.video] : PROBLEMS.mic[problem.audio];
    say(why ? why() : t("The device could not be started."), "problem");
    return false;
  }
  if (kind === "video") {
    local.camera = track;
    stopTrack(local.small);
    local.small = null;
    showSelf();
  } else {
    local.mic = track;
    meterMic(track);
  }
  republishCamera();
  return true;
}
