// Moving between the page's views: into the room (once welcomed) and to the final screen (left,
// removed, refused, ended…), which stops everything.

import { t } from "../i18n.js";
import { showOnly } from "../dom.js";
import { state, rtc, session, moderates } from "./state.js";
import { buildTiles } from "./stage.js";
import { closePeers } from "./peers.js";
import { stopLocal } from "./devices.js";
import { renderOwnControls } from "./controls.js";
import { startMeasuring, stopMeasuring } from "./quality.js";

const $ = (id) => document.getElementById(id);

export function showRoom() {
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

export function finalFromClose(code, error) {
  const byCode = { 4000: "replaced", 4010: "removed", 4011: "ended", 4012: "denied" };
  const reason = (state.final && state.final.reason) || byCode[code] || "refused";
  showFinal(reason, state.final && state.final.by, error && error.message);
}

export function showFinal(reason, by, detail) {
  if (state.view === "final") return;
  state.view = "final";
  state.connection = "closed";
  if (session.signalling) session.signalling.stopped = true;
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

export function leave() {
  state.final = { reason: "left" };
  if (session.signalling) session.signalling.leave();
  showFinal("left");
}
