// What the server says (docs/signalling.md): each signalling message updates the state and
// redraws what it touches. The welcome (first or after a reconnection) rebuilds everything.

import { t } from "../i18n.js";
import { state, session, notices, isMe } from "./state.js";
import { say } from "./status.js";
import { renderSlots } from "./stage.js";
import { restartMedia } from "./peers.js";
import { setMuted, renderOwnControls } from "./controls.js";
import { renderParticipants } from "./participants.js";
import { renderLock } from "./moderation.js";
import { showLobbyWait, lobbyChanged, renderLobby } from "./lobby.js";
import { renderChatHistory, appendChat } from "./chat.js";
import { showRoom, showFinal } from "./views.js";

const $ = (id) => document.getElementById(id);

export function onMessage(message) {
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
    if (message.ice_servers) session.iceServers = message.ice_servers;
    showRoom();
    renderChatHistory(message.chat || []);
    renderParticipants();
    renderLobby();
    renderLock();
    renderSlots();
    if (state.welcomed > 1) say(t("Connected again."), "ok");
    // What the new connection does not know yet: the hand, the line, the quality asked for.
    if (state.hand) session.signalling.send({ type: "update", hand: true });
    if (state.network) session.signalling.send({ type: "update", network: state.network });
    if (state.audioOnly) session.signalling.send({ type: "quality", weak_line: true, audio_only: true });
    restartMedia(0);
  },
  lobby_wait(message) {
    showLobbyWait(message.reason);
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
    lobbyChanged(message.waiting);
  },
  muted(message) {
    setMuted(true, false);
    say(t("{name} turned your microphone off.", { name: message.by || "" }), "attention");
  },
  unmute_request(message) {
    notices.mute = t("{name} asks you to speak. Press Unmute (or the M key) when you are ready.", { name: message.by || "" });
    say(notices.mute, "attention");
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
