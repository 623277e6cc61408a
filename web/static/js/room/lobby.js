// The waiting room, from both sides: the page of someone waiting to be let in, and the chair's
// and hosts' panel of those waiting, with Let in and Refuse.

import { t } from "../i18n.js";
import { el, showOnly } from "../dom.js";
import { state, session, notices, moderates } from "./state.js";
import { say } from "./status.js";

const $ = (id) => document.getElementById(id);

/** This person waits in the lobby (`reason`: guest, locked or removed). */
export function showLobbyWait(reason) {
  state.view = "lobby";
  const reasons = {
    guest: () => t("You came with a join link: the chair or a secretary lets guests in."),
    locked: () => t("The meeting is locked: newcomers wait here until they are let in."),
    removed: () => t("You were asked to leave the meeting earlier: the chair decides whether you come back."),
  };
  $("lobby-wait-reason").textContent = (reasons[reason] || reasons.locked)();
  $("lobby-connection").textContent = "";
  showOnly("lobby-wait");
}

/** The list of those waiting changed: tell about a newcomer, take the news back when it empties. */
export function lobbyChanged(waiting) {
  const before = new Set(state.lobby.map((w) => w.id));
  state.lobby = waiting || [];
  const fresh = state.lobby.filter((w) => !before.has(w.id));
  if (fresh.length) {
    notices.lobby = t("{name} is waiting in the waiting room.", { name: fresh[0].name });
    say(notices.lobby, "attention");
  } else if (!state.lobby.length && $("room-status").textContent === notices.lobby) {
    say("");
  }
  renderLobby();
}

export function renderLobby() {
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
    admit.addEventListener("click", () => session.signalling.send({ type: "admit", participant_id: w.id }));
    deny.addEventListener("click", () => session.signalling.send({ type: "deny", participant_id: w.id }));
    list.append(el("li", { "data-participant-id": w.id },
      el("span", { class: "person-name" }, w.name),
      el("span", { class: "muted small" }, [w.unit && w.unit.name !== w.name ? w.unit.name : "", how, why].filter(Boolean).join(" · ")),
      el("span", { class: "lobby-actions" }, admit, deny)));
  }
}
