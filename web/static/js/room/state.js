// The room page's shared state: the configuration from the page, what the page knows about the
// meeting (`state`, exposed as window.giaobanRoom.state), this browser's own tracks (`local`), its
// WebRTC connections (`rtc`) and the signalling connection. Every module that needs one of these
// imports it from here; nothing else keeps state that another module reads or writes.

import { readConfig } from "../i18n.js";

// Read first: it also loads the page's translations that every t() call uses.
export const config = readConfig("room-config");

export const THUMBNAILS = 4;

/** Everything the page knows; exposed as window.giaobanRoom.state. */
export const state = {
  view: "prejoin", // prejoin | joining | lobby | room | final
  connection: "closed", // connecting | connected | reconnecting | closed
  you: null,
  role: (config.me && config.me.role) || "participant",
  participants: {}, // by id, everyone in the room including you
  slots: {}, // slot name → {participantId, layer}
  muted: false,
  camera: true,
  hand: false,
  network: null,
  weakLine: false,
  audioOnly: false,
  screenSharing: false,
  locked: false,
  floor: null,
  activeSpeaker: null,
  lobby: [],
  final: null,
  welcomed: 0, // how many welcomes (more than one: we reconnected)
};

/** This browser's own tracks and the chosen devices. */
export const local = { mic: null, camera: null, small: null, screen: null, cameraId: "", micId: "", meter: null, speakingSince: 0, hintAt: 0 };

/** The WebRTC connections (camera, screen, subscription) and their restart bookkeeping. */
export const rtc = { camera: null, screen: null, sub: null, generation: 0, queue: Promise.resolve(), failures: [], retryTimer: 0 };

/** The signalling connection (made on join) and the ICE servers (the welcome may replace them). */
export const session = { signalling: null, iceServers: config.iceServers || [] };

/** The notices in #room-status that a later event takes back if they are still showing. */
export const notices = { mute: "", lobby: "" };

export function moderates() {
  return state.role === "chair" || state.role === "host";
}

export function isMe(id) {
  return state.you && state.you.id === id;
}
