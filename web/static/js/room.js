// The meeting room: the pre-join check, the lobby, the room itself (video slots, participants,
// chat, the chair's controls) and recovery from dropped connections. Protocol: docs/signalling.md.

import { readConfig, t, formatTime } from "./i18n.js";
import { Signalling } from "./signalling.js";
import * as media from "./media.js";
import { el, icon, setIcon, setLabel, showOnly } from "./dom.js";

const config = readConfig("room-config");
const THUMBNAILS = 4;
const MEASURE_EVERY = 5000; // ms between line measurements
const WEAK_LOSS = 5; // % of packets lost before proposing low-bandwidth mode…
const WEAK_ROUNDS = 2; // …for this many measurements in a row (about 10 s)
const $ = (id) => document.getElementById(id);

/** Everything the page knows; exposed as window.giaobanRoom.state. */
const state = {
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

const local = { mic: null, camera: null, small: null, screen: null, cameraId: "", micId: "", meter: null, speakingSince: 0, hintAt: 0 };
const rtc = { camera: null, screen: null, sub: null, generation: 0, queue: Promise.resolve(), failures: [], retryTimer: 0 };
let iceServers = config.iceServers || [];
let signalling = null;

// -- small helpers -----------------------------------------------------------------------
function moderates() {
  return state.role === "chair" || state.role === "host";
}

function isMe(id) {
  return state.you && state.you.id === id;
}

let sayTimer = 0;
let lobbyNotice = "";
let muteNotice = "";

/** A line in #room-status; it clears itself after a while so that it never tells old news. */
function say(text, tone = "") {
  const box = $("room-status");
  box.textContent = text;
  box.dataset.tone = tone;
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => {
    if (box.textContent === text) box.textContent = "";
  }, tone === "problem" ? 30000 : 20000);
}

function unitOf(p) {
  return p && p.unit && p.unit.name !== p.name ? p.unit.name : "";
}

function roleName(p) {
  if (p.role === "chair") return t("Chair");
  if (p.role === "host") return t("Moderator");
  if (p.role === "guest") return t("Guest");
  return "";
}

function initials(name) {
  const words = String(name || "").trim().split(/\s+/);
  const last = words[words.length - 1] || "";
  return last.charAt(0).toUpperCase();
}

// -- pre-join ------------------------------------------------------------------------------
function stopTrack(track) {
  if (track) track.stop();
}

function stopLocal() {
  if (local.meter) local.meter.stop();
  local.meter = null;
  for (const name of ["mic", "camera", "small", "screen"]) {
    stopTrack(local[name]);
    local[name] = null;
  }
}

let previewRun = 0;

async function startPreview() {
  const run = ++previewRun; // a newer choice of device wins over one still starting
  const status = $("prejoin-status");
  status.textContent = t("Starting the camera and the microphone…");
  status.dataset.tone = "";
  for (const id of ["join-button", "join-audio-only", "join-listen-only"]) $(id).disabled = true;
  stopLocal();
  const { stream, problem } = await media.openDevices({ cameraId: local.cameraId, micId: local.micId });
  if (state.view !== "prejoin" || run !== previewRun) {
    if (stream) stream.getTracks().forEach(stopTrack);
    return;
  }
  local.mic = stream ? stream.getAudioTracks()[0] || null : null;
  local.camera = stream ? stream.getVideoTracks()[0] || null : null;
  const preview = $("preview");
  preview.srcObject = local.camera ? new MediaStream([local.camera]) : null;
  $("preview-off").hidden = Boolean(local.camera);
  if (local.mic) {
    local.meter = new media.LevelMeter(local.mic, onMicLevel);
  } else {
    $("mic-level").value = 0;
  }
  await fillDevices();
  explainDevices(problem);
  for (const id of ["join-button", "join-audio-only", "join-listen-only"]) $(id).disabled = false;
  $("join-audio-only").hidden = !local.mic;
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
    muteNotice = t("You seem to be speaking, but your microphone is off. Press Unmute (or the M key) to be heard.");
    say(muteNotice, "attention");
    $("mute-button").classList.add("attention");
  }
}

const PROBLEMS = {
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

function explainDevices(problem) {
  const status = $("prejoin-status");
  const parts = [];
  if (problem.video === "insecure" || problem.audio === "insecure") {
    parts.push(t("The camera and the microphone only work when this page is opened with https. Please tell the technical staff."));
  } else {
    if (problem.video && problem.video === problem.audio && PROBLEMS.both[problem.video]) {
      parts.push(PROBLEMS.both[problem.video]());
    } else {
      if (problem.video && PROBLEMS.camera[problem.video]) parts.push(PROBLEMS.camera[problem.video]());
      if (problem.audio && PROBLEMS.mic[problem.audio]) parts.push(PROBLEMS.mic[problem.audio]());
    }
    if (problem.video === "denied" || problem.audio === "denied") {
      parts.push(t("To allow it, click the camera or lock icon at the left of the address bar, choose Allow, then press Try again."));
    }
    if (problem.video === "busy" || problem.audio === "busy") parts.push(t("Close that program, then press Try again."));
  }
  if (!local.mic && !local.camera) {
    parts.push(t("You can still join to listen only: you will see and hear the meeting."));
  } else if (!local.camera) {
    parts.push(t("You can join with sound only: others will hear you but not see you."));
  } else if (!local.mic) {
    parts.push(t("Others will not hear you, but you will see and hear the meeting."));
  }
  const trouble = Boolean(problem.video || problem.audio);
  status.textContent = trouble ? parts.join(" ") : t("Your camera and microphone are ready.");
  status.dataset.tone = trouble ? "problem" : "ok";
  $("prejoin-retry").hidden = !trouble || problem.video === "insecure";
  // Only what can be used is offered: no device list for a blocked camera, and when nothing
  // works, listening is the one way in.
  $("camera-row").hidden = !local.camera;
  $("mic-row").hidden = !local.mic;
  $("join-camera-off-row").hidden = !local.camera;
  $("join-muted-row").hidden = !local.mic;
  const nothing = !local.mic && !local.camera;
  $("join-button").hidden = nothing;
  $("join-listen-only").classList.toggle("primary", nothing);
}

async function fillDevices() {
  const { cameras, mics } = await media.listDevices();
  const fill = (select, devices, current, fallback) => {
    select.replaceChildren();
    devices.forEach((device, index) => {
      const option = el("option", { value: device.deviceId }, device.label || fallback(index + 1));
      select.append(option);
    });
    if (current && current.getSettings) {
      const id = current.getSettings().deviceId;
      if (id) select.value = id;
    }
    select.disabled = devices.length < 2 && Boolean(current);
    if (!devices.length) select.append(el("option", { value: "" }, t("None found")));
  };
  fill($("camera-select"), cameras, local.camera, (n) => t("Camera {number}", { number: n }));
  fill($("mic-select"), mics, local.mic, (n) => t("Microphone {number}", { number: n }));
}

function setupPrejoin() {
  const me = config.me || {};
  $("me-name").textContent = me.name || "";
  $("me-unit").textContent = me.unit || "";
  $("camera-select").addEventListener("change", (event) => {
    local.cameraId = event.target.value;
    startPreview();
  });
  $("mic-select").addEventListener("change", (event) => {
    local.micId = event.target.value;
    startPreview();
  });
  $("prejoin-retry").addEventListener("click", () => startPreview());
  $("join-button").addEventListener("click", () => join("full"));
  $("join-audio-only").addEventListener("click", () => join("audio"));
  $("join-listen-only").addEventListener("click", () => join("listen"));
  startPreview();
}

function join(mode) {
  if (state.view !== "prejoin") return;
  if (mode === "audio" || mode === "listen") {
    stopTrack(local.camera);
    local.camera = null;
  }
  if (mode === "listen") {
    if (local.meter) local.meter.stop();
    local.meter = null;
    stopTrack(local.mic);
    local.mic = null;
  }
  state.muted = $("join-muted").checked || !local.mic;
  state.camera = !$("join-camera-off").checked && Boolean(local.camera);
  if (local.mic) local.mic.enabled = !state.muted;
  if (local.camera) local.camera.enabled = state.camera;
  state.view = "joining";
  for (const id of ["join-button", "join-audio-only", "join-listen-only", "camera-select", "mic-select", "prejoin-retry"]) $(id).disabled = true;
  $("prejoin-status").dataset.tone = "";
  signalling = new Signalling({
    path: config.wsPath,
    query: config.query || {},
    heartbeat: config.heartbeat || 15,
    makeJoin: () => ({
      type: "join", protocol: 1, thumbnails: THUMBNAILS, weak_line: state.weakLine, muted: state.muted, camera: state.camera,
    }),
    onMessage,
    onState: onConnectionState,
  });
  signalling.start();
}

// -- connection ---------------------------------------------------------------------------
function onConnectionState(connection, detail) {
  state.connection = connection;
  let text = "";
  if (connection === "connecting") text = t("Connecting…");
  if (connection === "reconnecting") {
    text = detail.delay
      ? t("The connection was lost. Reconnecting in {seconds} seconds…", { seconds: Math.round(detail.delay / 1000) })
      : t("Reconnecting…");
  }
  const box = $("connection-status");
  box.textContent = text;
  box.dataset.state = connection;
  $("big-area").dataset.notice = connection === "reconnecting" ? text : "";
  if (state.view === "joining") $("prejoin-status").textContent = text;
  if (state.view === "lobby") $("lobby-connection").textContent = text;
  if (connection === "reconnecting") {
    // The server forgets us when the socket drops: the media starts again after welcome.
    rtc.generation += 1;
    closePeers();
  }
  if (connection === "closed" && detail.code !== undefined && state.view !== "final") finalFromClose(detail.code, detail.error);
}

function onMessage(message) {
  const handler = HANDLERS[message.type];
  if (handler) handler(message);
}

const HANDLERS = {
  welcome(message) {
    state.welcomed += 1;
    state.you = message.you;
    state.role = message.you.role;
    state.participants = {};
    for (const p of [message.you, ...(message.participants || [])]) state.participants[p.id] = p;
    state.locked = Boolean(message.locked);
    state.floor = message.floor || null;
    state.lobby = message.lobby || [];
    state.slots = {};
    if (message.ice_servers) iceServers = message.ice_servers;
    showRoom();
    renderChatHistory(message.chat || []);
    renderParticipants();
    renderLobby();
    renderLock();
    renderSlots();
    if (state.welcomed > 1) say(t("Connected again."), "ok");
    // What the new connection does not know yet: the hand, the line, the quality asked for.
    if (state.hand) signalling.send({ type: "update", hand: true });
    if (state.network) signalling.send({ type: "update", network: state.network });
    if (state.audioOnly) signalling.send({ type: "quality", weak_line: true, audio_only: true });
    restartMedia(0);
  },
  lobby_wait(message) {
    state.view = "lobby";
    const reasons = {
      guest: () => t("You came with a join link: the chair or a secretary lets guests in."),
      locked: () => t("The meeting is locked: newcomers wait here until they are let in."),
      removed: () => t("You were asked to leave the meeting earlier: the chair decides whether you come back."),
    };
    $("lobby-wait-reason").textContent = (reasons[message.reason] || reasons.locked)();
    $("lobby-connection").textContent = "";
    showOnly("lobby-wait");
  },
  slots(message) {
    state.slots = {};
    for (const s of message.slots || []) state.slots[s.slot] = { participantId: s.participant_id || null, layer: s.layer || null };
    renderSlots();
  },
  active_speaker(message) {
    state.activeSpeaker = message.participant_id || null;
    document.querySelectorAll(".speaking").forEach((node) => node.classList.remove("speaking"));
    if (state.activeSpeaker) {
      const id = CSS.escape(state.activeSpeaker);
      document.querySelectorAll('.tile[data-participant-id="' + id + '"], #participants li[data-participant-id="' + id + '"]')
        .forEach((node) => node.classList.add("speaking"));
    }
  },
  participant_joined(message) {
    state.participants[message.participant.id] = message.participant;
    renderParticipants();
    renderSlots();
  },
  participant_updated(message) {
    const p = message.participant;
    state.participants[p.id] = p;
    if (isMe(p.id)) {
      state.you = p;
      if (state.hand !== p.hand) {
        state.hand = p.hand; // the chair lowered it
        renderOwnControls();
      }
    }
    renderParticipants();
    renderSlots();
  },
  participant_left(message) {
    delete state.participants[message.participant_id];
    if (state.floor === message.participant_id) state.floor = null;
    renderParticipants();
    renderSlots();
  },
  chat(message) {
    appendChat(message);
  },
  lobby(message) {
    const before = new Set(state.lobby.map((w) => w.id));
    state.lobby = message.waiting || [];
    const fresh = state.lobby.filter((w) => !before.has(w.id));
    if (fresh.length) {
      lobbyNotice = t("{name} is waiting in the waiting room.", { name: fresh[0].name });
      say(lobbyNotice, "attention");
    } else if (!state.lobby.length && $("room-status").textContent === lobbyNotice) {
      say("");
    }
    renderLobby();
  },
  muted(message) {
    setMuted(true, false);
    say(t("{name} turned your microphone off.", { name: message.by || "" }), "attention");
  },
  unmute_request(message) {
    muteNotice = t("{name} asks you to speak. Press Unmute (or the M key) when you are ready.", { name: message.by || "" });
    say(muteNotice, "attention");
    $("mute-button").classList.add("attention");
  },
  floor(message) {
    state.floor = message.participant_id || null;
    const by = message.by || "";
    if (!state.floor) {
      say(t("{name} took the floor back.", { name: by }));
    } else if (isMe(state.floor)) {
      say(t("{name} gave you the floor: everyone sees you now.", { name: by }), "attention");
    } else {
      const person = state.participants[state.floor];
      say(t("{name} gave the floor to {person}.", { name: by, person: person ? person.name : "" }));
    }
    renderParticipants();
  },
  room_state(message) {
    state.locked = Boolean(message.locked);
    say(state.locked
      ? t("{name} locked the meeting: newcomers wait in the waiting room.", { name: message.by || "" })
      : t("{name} unlocked the meeting.", { name: message.by || "" }));
    renderLock();
  },
  removed(message) {
    state.final = { reason: "removed", by: message.by };
    showFinal("removed", message.by);
  },
  denied(message) {
    state.final = { reason: "denied", by: message.by };
    showFinal("denied", message.by);
  },
  ended(message) {
    state.final = { reason: "ended", by: message.by };
    showFinal("ended", message.by);
  },
  rejoin() {
    say(t("The media service restarted: reconnecting the picture and the sound…"), "attention");
    restartMedia(0);
  },
  error(message) {
    if (message.code === "replaced") {
      state.final = { reason: "replaced" };
      return; // the close that follows shows it
    }
    if (state.view === "room") say(message.message || message.code, "problem");
    else if (state.view === "lobby") $("lobby-connection").textContent = message.message || message.code;
    else $("prejoin-status").textContent = message.message || message.code;
  },
};

// -- views ----------------------------------------------------------------------------------
function showRoom() {
  if (state.view !== "room") {
    state.view = "room";
    showOnly("room");
    document.body.classList.add("in-room");
    $("chair-controls").hidden = !moderates();
    buildTiles();
    renderOwnControls();
    startMeasuring();
  }
  $("chair-controls").hidden = !moderates();
}

function finalFromClose(code, error) {
  const byCode = { 4000: "replaced", 4010: "removed", 4011: "ended", 4012: "denied" };
  const reason = (state.final && state.final.reason) || byCode[code] || "refused";
  showFinal(reason, state.final && state.final.by, error && error.message);
}

function showFinal(reason, by, detail) {
  if (state.view === "final") return;
  state.view = "final";
  state.connection = "closed";
  if (signalling) signalling.stopped = true;
  rtc.generation += 1;
  closePeers();
  stopLocal();
  stopMeasuring();
  document.body.classList.remove("in-room");
  const titles = {
    left: () => t("You have left the meeting"),
    removed: () => t("You were asked to leave the meeting"),
    denied: () => t("You were not let in"),
    ended: () => t("The meeting has ended"),
    replaced: () => t("You joined from another window"),
    refused: () => t("You cannot join this meeting now"),
  };
  const messages = {
    left: () => t("Thank you for taking part."),
    removed: () => t("{name} removed you from the meeting. If this is a mistake, contact the secretary.", { name: by || "" }),
    denied: () => t("{name} did not let you into the meeting.", { name: by || "" }),
    ended: () => t("{name} ended the meeting for everyone. Thank you for taking part.", { name: by || "" }),
    replaced: () => t("You joined this meeting again from another window or device; this page has stopped."),
    refused: () => detail || t("The server refused the connection."),
  };
  $("final-title").textContent = (titles[reason] || titles.refused)();
  $("final-message").textContent = (messages[reason] || messages.refused)();
  $("final").dataset.reason = reason;
  const rejoin = $("final-rejoin");
  rejoin.hidden = !(reason === "left" || reason === "replaced");
  rejoin.href = location.pathname + location.search;
  showOnly("final");
  $("final-title").tabIndex = -1;
  $("final-title").focus();
}

// -- media ------------------------------------------------------------------------------------
function closePeers() {
  for (const name of ["camera", "screen", "sub"]) {
    if (rtc[name]) {
      try { rtc[name].pc.close(); } catch (error) { /* closed */ }
      rtc[name] = null;
    }
  }
  clearTimeout(rtc.retryTimer);
}

/** Close both directions and publish and subscribe again (after welcome, rejoin or a failure). */
function restartMedia(delay) {
  rtc.generation += 1;
  const generation = rtc.generation;
  closePeers();
  rtc.retryTimer = setTimeout(() => enqueue(() => startMedia(generation)), delay);
}

function enqueue(task) {
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
    signalling.restart(); // a fresh connection from scratch
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
  const published = await media.publish(signalling, { stream: "camera", tracks, iceServers });
  if (generation !== rtc.generation) {
    published.pc.close();
    return;
  }
  if (rtc.camera) rtc.camera.pc.close();
  rtc.camera = published;
  watch(published.pc, generation);
}

async function publishScreen(generation) {
  const published = await media.publish(signalling, {
    stream: "screen", tracks: [{ track: local.screen, layer: "screen", maxBitrate: media.SCREEN_BITRATE }], iceServers,
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
  const sub = await media.subscribe(signalling, { iceServers, onTrack: attachTrack });
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
function republishCamera() {
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

async function addDevice(kind) {
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
    if (local.meter) local.meter.stop();
    local.meter = new media.LevelMeter(track, onMicLevel);
  }
  republishCamera();
  return true;
}

// -- own controls -------------------------------------------------------------------------------
function setMuted(muted, tell = true) {
  state.muted = muted;
  if (!muted && muteNotice && $("room-status").textContent === muteNotice) say("");
  if (local.mic) local.mic.enabled = !muted;
  if (tell && signalling) signalling.send({ type: "update", muted });
  renderOwnControls();
}

async function toggleMute() {
  if (state.view !== "room") return;
  $("mute-button").classList.remove("attention");
  if (state.muted && !local.mic && !(await addDevice("audio"))) return;
  setMuted(!state.muted);
}

async function toggleCamera() {
  if (state.view !== "room") return;
  if (!state.camera && !local.camera && !(await addDevice("video"))) return;
  state.camera = !state.camera;
  if (local.camera) local.camera.enabled = state.camera;
  if (local.small) local.small.enabled = state.camera;
  signalling.send({ type: "update", camera: state.camera });
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
  if (signalling) signalling.send({ type: "unpublish", stream: "screen" });
  renderOwnControls();
  say(t("You stopped sharing your screen."));
}

function toggleHand() {
  state.hand = !state.hand;
  signalling.send({ type: "update", hand: state.hand });
  renderOwnControls();
  if (state.hand) say(t("Your hand is raised: the chair sees it in the list."));
}

function setQuality(weakLine, audioOnly) {
  state.weakLine = weakLine;
  state.audioOnly = weakLine && audioOnly;
  signalling.send({ type: "quality", weak_line: state.weakLine, audio_only: state.audioOnly });
  if (rtc.camera && rtc.camera.senders.camera) {
    media.setMaxBitrate(rtc.camera.senders.camera, state.weakLine ? media.WEAK_FULL_BITRATE : media.FULL_BITRATE);
  }
  renderOwnControls();
  if (state.audioOnly) say(t("Sound only: you no longer receive video, which saves the most bandwidth."));
  else if (state.weakLine) say(t("Low-bandwidth mode: you receive smaller pictures. Press Sound only to save more."));
  else say(t("Normal quality again."));
}

function leave() {
  state.final = { reason: "left" };
  if (signalling) signalling.leave();
  showFinal("left");
}

function renderOwnControls() {
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

// -- tiles -----------------------------------------------------------------------------------------
function tileFor(slot) {
  return document.querySelector('.tile[data-slot="' + slot + '"]');
}

function makeTile(slot, extraClass) {
  const video = el("video", { autoplay: "", playsinline: "", "data-slot": slot });
  video.muted = true;
  return el("div", { class: "tile " + extraClass, "data-slot": slot },
    video,
    el("div", { class: "tile-placeholder" }, el("span", { class: "initials" }), el("span", { class: "placeholder-text" })),
    el("p", { class: "tile-label" }, el("span", { class: "tile-name" }), el("span", { class: "tile-unit" }), el("span", { class: "tile-muted", hidden: "" }, icon("i-mic-off"))));
}

function buildTiles() {
  if (document.querySelector(".tile")) return;
  const big = $("big-area");
  big.append(makeTile("main", "tile-main"), makeTile("screen", "tile-screen"));
  const strip = $("strip");
  for (let i = 1; i <= THUMBNAILS; i += 1) strip.append(makeTile("thumb" + i, "tile-thumb"));
  const selfVideo = el("video", { autoplay: "", playsinline: "", class: "mirror", id: "self-view" });
  selfVideo.muted = true;
  strip.append(el("div", { class: "tile tile-thumb tile-self", id: "self-tile" },
    selfVideo,
    el("div", { class: "tile-placeholder" }, el("span", { class: "initials" })),
    el("p", { class: "tile-label" }, el("span", { class: "tile-name" }, t("You")), el("span", { class: "tile-muted", hidden: "" }, icon("i-mic-off")))));
  for (let i = 1; i <= 3; i += 1) ensureSlotElement("audio" + i, "audio");
  renderSlots();
}

function ensureSlotElement(slot, kind) {
  if (kind === "audio") {
    let audio = document.querySelector('audio[data-slot="' + slot + '"]');
    if (!audio) {
      audio = el("audio", { autoplay: "", "data-slot": slot });
      $("audio-slots").append(audio);
    }
    return audio;
  }
  let tile = tileFor(slot);
  if (!tile) {
    tile = makeTile(slot, slot === "main" ? "tile-main" : slot === "screen" ? "tile-screen" : "tile-thumb");
    (slot === "main" || slot === "screen" ? $("big-area") : $("strip")).insertBefore(tile, slot === "main" || slot === "screen" ? null : $("self-tile"));
  }
  return tile.querySelector("video");
}

function renderSlots() {
  document.querySelectorAll(".tile[data-slot]").forEach((tile) => {
    const slot = tile.dataset.slot;
    const assigned = state.slots[slot];
    const id = assigned && assigned.participantId;
    const p = id ? state.participants[id] : null;
    if (id) tile.dataset.participantId = id;
    else tile.removeAttribute("data-participant-id");
    tile.classList.toggle("idle", !id);
    tile.classList.toggle("camera-off", Boolean(p && !p.camera && slot !== "screen"));
    tile.classList.toggle("speaking", Boolean(id && id === state.activeSpeaker));
    tile.querySelector(".tile-name").textContent = p ? p.name : "";
    tile.querySelector(".tile-unit").textContent = unitOf(p);
    tile.querySelector(".tile-muted").hidden = !(p && p.muted) || slot === "screen";
    tile.querySelector(".initials").textContent = p ? initials(p.name) : "";
    const text = tile.querySelector(".placeholder-text");
    if (text) {
      const alone = Object.keys(state.participants).length <= 1;
      if (!id && slot === "main" && alone) text.textContent = t("You are the first in the room. The others appear here when they join.");
      else if (!id && slot === "main") text.textContent = t("Nobody is showing a picture yet. The person speaking appears here.");
      else if (p && !p.camera) text.textContent = t("Camera off");
      else text.textContent = "";
    }
    if (slot === "screen") tile.querySelector(".tile-name").textContent = p ? t("{name} is sharing the screen", { name: p.name }) : "";
  });
  document.querySelectorAll("audio[data-slot]").forEach((audio) => {
    const assigned = state.slots[audio.dataset.slot];
    if (assigned && assigned.participantId) audio.dataset.participantId = assigned.participantId;
    else audio.removeAttribute("data-participant-id");
  });
  const screen = state.slots.screen && state.slots.screen.participantId;
  $("big-area").classList.toggle("has-screen", Boolean(screen));
  showSelf();
}

function showSelf() {
  const tile = $("self-tile");
  if (!tile) return;
  const video = $("self-view");
  const track = local.camera && local.camera.readyState === "live" ? local.camera : null;
  if (track && (!video.srcObject || video.srcObject.getVideoTracks()[0] !== track)) video.srcObject = new MediaStream([track]);
  if (!track) video.srcObject = null;
  tile.classList.toggle("camera-off", !track || !state.camera);
  tile.querySelector(".initials").textContent = initials((config.me && config.me.name) || "");
  tile.querySelector(".tile-muted").hidden = !state.muted;
  if (state.you) tile.dataset.participantId = state.you.id;
  tile.classList.toggle("speaking", Boolean(state.you && state.you.id === state.activeSpeaker));
}

// -- participants --------------------------------------------------------------------------------
const entries = new Map(); // participant id → li

const ROLE_ORDER = { chair: 0, host: 1, participant: 2, guest: 3 };

function stateIcon(className, iconId, text, hidden) {
  const span = el("span", { class: "state " + className, title: text }, icon(iconId), el("span", { class: "visually-hidden" }, text));
  span.hidden = Boolean(hidden);
  return span;
}

function personButton(className, text, title) {
  return el("button", { type: "button", class: "small-button " + className, title: title || text }, text);
}

function createEntry(id) {
  const li = el("li", { class: "person", "data-participant-id": id },
    el("div", { class: "person-line" },
      el("span", { class: "person-name" }),
      el("span", { class: "person-badges" }),
      el("span", { class: "person-state" })),
    el("div", { class: "person-actions" }));
  const actions = li.querySelector(".person-actions");
  actions.append(
    personButton("mute-participant", t("Mute"), t("Turn this person's microphone off")),
    personButton("ask-unmute", t("Ask to speak"), t("Ask this person to turn the microphone on")),
    personButton("lower-hand", t("Lower hand")),
    personButton("floor-participant", t("Give the floor"), t("Show this person to everyone in the large picture")),
    personButton("remove-participant", t("Remove from meeting"), t("Remove this person from the meeting")),
  );
  actions.querySelector(".floor-participant").setAttribute("aria-pressed", "false");
  actions.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) personAction(button, id);
  });
  return li;
}

function updateEntry(li, p) {
  const me = isMe(p.id);
  li.dataset.muted = String(Boolean(p.muted));
  li.dataset.camera = String(Boolean(p.camera));
  li.dataset.hand = String(Boolean(p.hand));
  li.classList.toggle("you", me);
  li.classList.toggle("has-floor", state.floor === p.id);
  li.classList.toggle("speaking", state.activeSpeaker === p.id);
  li.querySelector(".person-name").textContent = p.name;
  const badges = li.querySelector(".person-badges");
  badges.replaceChildren();
  const role = roleName(p);
  if (role) badges.append(el("span", { class: "badge role-" + p.role }, role));
  if (p.kind === "room") badges.append(el("span", { class: "badge" }, t("Meeting room")));
  if (me) badges.append(el("span", { class: "badge badge-you" }, t("You")));
  if (state.floor === p.id) badges.append(el("span", { class: "badge badge-floor" }, t("Has the floor")));
  const icons = li.querySelector(".person-state");
  const level = p.network || "";
  const quality = el("span", { class: "quality", title: level ? qualityText(level) : "" },
    el("span", { class: "bars", "aria-hidden": "true" }, el("i"), el("i"), el("i")),
    el("span", { class: "visually-hidden" }, level ? qualityText(level) : ""));
  if (level) quality.dataset.level = level;
  quality.hidden = !level;
  icons.replaceChildren(
    stateIcon("state-hand", "i-hand", t("Hand raised"), !p.hand),
    stateIcon(p.muted ? "state-mic off" : "state-mic", p.muted ? "i-mic-off" : "i-mic", p.muted ? t("Microphone off") : t("Microphone on")),
    stateIcon(p.camera ? "state-camera" : "state-camera off", p.camera ? "i-camera" : "i-camera-off", p.camera ? t("Camera on") : t("Camera off")),
    quality,
  );
  const actions = li.querySelector(".person-actions");
  const canRemove = !me && p.role !== "chair" && (p.role !== "host" || state.role === "chair");
  actions.hidden = !moderates();
  const show = (selector, visible) => {
    const button = actions.querySelector(selector);
    if (!visible && button === document.activeElement) actions.querySelector(".floor-participant").focus();
    button.hidden = !visible;
  };
  show(".mute-participant", !me && !p.muted);
  show(".ask-unmute", !me && p.muted);
  show(".lower-hand", p.hand);
  show(".remove-participant", canRemove);
  const floor = actions.querySelector(".floor-participant");
  floor.setAttribute("aria-pressed", String(state.floor === p.id));
  floor.textContent = state.floor === p.id ? t("Take the floor back") : t("Give the floor");
}

function qualityText(level) {
  if (level === "good") return t("Line: good");
  if (level === "fair") return t("Line: fair");
  return t("Line: poor");
}

function sortPeople(a, b) {
  if (isMe(a.id) !== isMe(b.id)) return isMe(a.id) ? -1 : 1;
  const ra = ROLE_ORDER[a.role] ?? 9;
  const rb = ROLE_ORDER[b.role] ?? 9;
  return ra - rb || a.name.localeCompare(b.name, document.documentElement.lang || "vi");
}

function renderParticipants() {
  const list = $("participants");
  const people = Object.values(state.participants);
  const groups = new Map();
  for (const p of people.sort(sortPeople)) {
    const key = p.unit ? p.unit.code || p.unit.name : "";
    if (!groups.has(key)) groups.set(key, { name: p.unit ? p.unit.name : t("Without a unit"), people: [] });
    groups.get(key).people.push(p);
  }
  const keys = [...groups.keys()].sort((a, b) => {
    if (!a || !b) return a ? -1 : b ? 1 : 0;
    return groups.get(a).name.localeCompare(groups.get(b).name, document.documentElement.lang || "vi");
  });
  for (const [id, li] of entries) {
    if (!state.participants[id]) {
      li.remove();
      entries.delete(id);
    }
  }
  const sections = [];
  for (const key of keys) {
    const group = groups.get(key);
    let section = list.querySelector('section.people-group[data-unit="' + CSS.escape(key) + '"]');
    if (!section) section = el("section", { class: "people-group", "data-unit": key }, el("h3", {}), el("ul", {}));
    section.querySelector("h3").textContent = group.name + " (" + group.people.length + ")";
    const ul = section.querySelector("ul");
    const wanted = group.people.map((p) => {
      let li = entries.get(p.id);
      if (!li) {
        li = createEntry(p.id);
        entries.set(p.id, li);
      }
      updateEntry(li, p);
      return li;
    });
    if (wanted.some((li, index) => ul.children[index] !== li) || ul.children.length !== wanted.length) ul.replaceChildren(...wanted);
    sections.push(section);
  }
  if (sections.some((s, index) => list.children[index] !== s) || list.children.length !== sections.length) list.replaceChildren(...sections);
  $("participant-count").textContent = "(" + people.length + ")";
}

function personAction(button, id) {
  const p = state.participants[id];
  if (!p) return;
  if (button.classList.contains("mute-participant")) signalling.send({ type: "mute", participant_id: id });
  else if (button.classList.contains("ask-unmute")) {
    signalling.send({ type: "ask_unmute", participant_id: id });
    say(t("{name} was asked to speak.", { name: p.name }));
  } else if (button.classList.contains("lower-hand")) signalling.send({ type: "lower_hand", participant_id: id });
  else if (button.classList.contains("floor-participant")) signalling.send({ type: "floor", participant_id: state.floor === id ? null : id });
  else if (button.classList.contains("remove-participant")) {
    confirmAction(t("Remove {name} from the meeting? They can only come back through the waiting room.", { name: p.name }))
      .then((yes) => { if (yes) signalling.send({ type: "remove", participant_id: id }); });
  }
}

/** The browser's own confirmation: plain, keyboard-friendly, in the browser's language. */
function confirmAction(text) {
  return Promise.resolve(window.confirm(text));
}

// -- lobby (chair and hosts) -----------------------------------------------------------------------
function renderLobby() {
  const panel = $("lobby");
  const list = $("lobby-list");
  panel.hidden = !moderates() || !state.lobby.length;
  $("lobby-count").textContent = state.lobby.length ? "(" + state.lobby.length + ")" : "";
  const keep = new Set(state.lobby.map((w) => w.id));
  list.querySelectorAll("li[data-participant-id]").forEach((li) => { if (!keep.has(li.dataset.participantId)) li.remove(); });
  for (const w of state.lobby) {
    if (list.querySelector('li[data-participant-id="' + CSS.escape(w.id) + '"]')) continue;
    const how = w.how === "link" ? t("came with a join link") : t("came with an account");
    const why = w.reason === "removed" ? t("was removed earlier") : "";
    const admit = el("button", { type: "button", class: "small-button admit" }, t("Let in"));
    const deny = el("button", { type: "button", class: "small-button deny" }, t("Refuse"));
    admit.addEventListener("click", () => signalling.send({ type: "admit", participant_id: w.id }));
    deny.addEventListener("click", () => signalling.send({ type: "deny", participant_id: w.id }));
    list.append(el("li", { "data-participant-id": w.id },
      el("span", { class: "person-name" }, w.name),
      el("span", { class: "muted small" }, [w.unit && w.unit.name !== w.name ? w.unit.name : "", how, why].filter(Boolean).join(" · ")),
      el("span", { class: "lobby-actions" }, admit, deny)));
  }
}

function renderLock() {
  $("locked-badge").hidden = !state.locked;
  const lock = $("lock-button");
  lock.setAttribute("aria-pressed", String(state.locked));
  setLabel(lock, state.locked ? t("Unlock the meeting") : t("Lock the meeting"));
  lock.title = state.locked ? t("The meeting is locked: newcomers wait. Press to unlock.") : t("Make newcomers wait in the waiting room");
}

// -- chat -------------------------------------------------------------------------------------
let unread = 0;

function renderChatHistory(messages) {
  $("chat-log").replaceChildren();
  for (const m of messages) appendChat(m, true);
}

function appendChat(message, history = false) {
  const log = $("chat-log");
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = el("li", { class: "chat-message" + (message.from && isMe(message.from) ? " mine" : "") },
    el("p", { class: "chat-meta" },
      el("span", { class: "chat-name" }, message.name || ""),
      message.unit && message.unit !== message.name ? el("span", { class: "chat-unit" }, message.unit) : "",
      el("time", { datetime: message.at || "" }, formatTime(message.at))),
    el("p", { class: "chat-text" }, message.text || ""));
  if (message.id) li.dataset.chatId = String(message.id);
  log.append(li);
  if (nearBottom || history || (message.from && isMe(message.from))) log.scrollTop = log.scrollHeight;
  if (!history && $("chat").hidden) {
    unread += 1;
    const badge = $("chat-unread");
    badge.textContent = String(unread);
    badge.hidden = false;
  }
}

function setupChat() {
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text || !signalling) return;
    if (signalling.send({ type: "chat", text: text.slice(0, 2000) })) input.value = "";
    else say(t("The message was not sent: the connection is being restored."), "problem");
  });
  $("chat-toggle").addEventListener("click", () => {
    const chat = $("chat");
    chat.hidden = !chat.hidden;
    $("chat-toggle").setAttribute("aria-pressed", String(!chat.hidden));
    if (!chat.hidden) {
      unread = 0;
      $("chat-unread").hidden = true;
      $("chat-input").focus();
    }
  });
  setLabel($("chat-toggle"), t("Chat"));
  $("chat-toggle").title = t("Show or hide the chat");
}

// -- the line ------------------------------------------------------------------------------------
const line = { meter: new media.LineMeter(), timer: 0, pending: null, pendingCount: 0, lossRounds: 0, dismissedAt: 0, last: null };

function startMeasuring() {
  clearInterval(line.timer);
  line.timer = setInterval(measureLine, MEASURE_EVERY);
}

function stopMeasuring() {
  clearInterval(line.timer);
}

async function measureLine() {
  if (state.view !== "room" || state.connection !== "connected") return;
  const pcs = [rtc.camera, rtc.screen, rtc.sub].filter(Boolean).map((x) => x.pc);
  if (!pcs.length) return;
  const figures = await line.meter.measure(pcs);
  line.last = figures;
  const level = media.lineLevel(figures);
  if (level && level !== state.network) {
    // A change counts once it is seen twice in a row (or at once, the first time).
    if (state.network === null || line.pending === level) {
      state.network = level;
      line.pending = null;
      signalling.send({ type: "update", network: level });
    } else {
      line.pending = level;
    }
  } else {
    line.pending = null;
  }
  line.lossRounds = figures.loss !== null && figures.loss > WEAK_LOSS ? line.lossRounds + 1 : 0;
  const banner = $("bandwidth-banner");
  if (line.lossRounds >= WEAK_ROUNDS && !state.weakLine && Date.now() - line.dismissedAt > 300000) banner.hidden = false;
  if (state.weakLine) banner.hidden = true;
}

// -- keyboard ------------------------------------------------------------------------------------
function typing(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
}

function onKey(event) {
  if (state.view !== "room" || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (typing(event.target)) return;
  const key = event.key.toLowerCase();
  if (key === "m") {
    event.preventDefault();
    toggleMute();
  } else if (key === "v") {
    event.preventDefault();
    toggleCamera();
  }
}

// -- start ---------------------------------------------------------------------------------------
function setupRoom() {
  $("mute-button").addEventListener("click", toggleMute);
  $("camera-button").addEventListener("click", toggleCamera);
  $("screen-button").addEventListener("click", toggleScreen);
  $("hand-button").addEventListener("click", toggleHand);
  $("low-bandwidth-button").addEventListener("click", () => setQuality(!state.weakLine, false));
  $("audio-only-button").addEventListener("click", () => setQuality(true, !state.audioOnly));
  $("bandwidth-accept").addEventListener("click", () => {
    $("bandwidth-banner").hidden = true;
    setQuality(true, false);
  });
  $("bandwidth-dismiss").addEventListener("click", () => {
    $("bandwidth-banner").hidden = true;
    line.dismissedAt = Date.now();
  });
  $("leave-button").addEventListener("click", leave);
  $("lobby-leave").addEventListener("click", leave);
  $("mute-all").addEventListener("click", () => signalling.send({ type: "mute", all: true }));
  $("mute-all").title = t("Turn off every microphone but yours");
  $("lock-button").addEventListener("click", () => signalling.send({ type: "lock", locked: !state.locked }));
  $("end-button").addEventListener("click", () => {
    confirmAction(t("End the meeting for everyone? Nobody can come back into this meeting's room."))
      .then((yes) => { if (yes) signalling.send({ type: "end" }); });
  });
  $("end-button").title = t("End the meeting for everyone");
  $("leave-button").title = t("Leave the meeting; the others stay");
  document.addEventListener("keydown", onKey);
  window.addEventListener("pagehide", () => {
    closePeers();
  });
  setupChat();
  renderLock();
}

window.giaobanRoom = {
  state,
  async inboundVideo() {
    const figures = await media.inboundVideo(rtc.sub);
    return figures.map((f) => ({
      slot: f.slot,
      participantId: (state.slots[f.slot] && state.slots[f.slot].participantId) || null,
      framesDecoded: f.framesDecoded,
      frameWidth: f.frameWidth,
      frameHeight: f.frameHeight,
      packetsReceived: f.packetsReceived,
      keyFramesDecoded: f.keyFramesDecoded,
      pliCount: f.pliCount,
    }));
  },
  /** What this page sends: per camera layer (and the screen), the outbound-rtp figures. */
  async outboundVideo() {
    const out = [];
    for (const published of [rtc.camera, rtc.screen]) {
      if (!published) continue;
      for (const [layer, sender] of Object.entries(published.senders)) {
        if (!sender.track || sender.track.kind !== "video") continue;
        const report = await sender.getStats();
        report.forEach((s) => {
          if (s.type === "outbound-rtp") {
            out.push({
              layer, framesSent: s.framesSent || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
              qualityLimitationReason: s.qualityLimitationReason || "", targetBitrate: s.targetBitrate || 0,
              keyFramesEncoded: s.keyFramesEncoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0,
            });
          }
        });
      }
    }
    return out;
  },
  /** The last line measurement: {rtt, loss, recvKbps, sendKbps}. */
  line: () => line.last,
};

setupRoom();
setupPrejoin();
