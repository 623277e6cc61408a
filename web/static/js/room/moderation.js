// What the chair and hosts do to the meeting: act on a person (mute, ask to speak, lower the
// hand, give the floor, remove), mute everyone, lock the meeting and end it for everyone.

import { t } from "../i18n.js";
import { setLabel } from "../dom.js";
import { state, session } from "./state.js";
import { say } from "./status.js";

const $ = (id) => document.getElementById(id);

/** A click on one of the buttons under a person in the list. */
export function personAction(button, id) {
  const p = state.participants[id];
  if (!p) return;
  if (button.classList.contains("mute-participant")) session.signalling.send({ type: "mute", participant_id: id });
  else if (button.classList.contains("ask-unmute")) {
    session.signalling.send({ type: "ask_unmute", participant_id: id });
    say(t("{name} was asked to speak.", { name: p.name }));
  } else if (button.classList.contains("lower-hand")) session.signalling.send({ type: "lower_hand", participant_id: id });
  else if (button.classList.contains("floor-participant")) session.signalling.send({ type: "floor", participant_id: state.floor === id ? null : id });
  else if (button.classList.contains("remove-participant")) {
    confirmAction(t("Remove {name} from the meeting? They can only come back through the waiting room.", { name: p.name }))
      .then((yes) => { if (yes) session.signalling.send({ type: "remove", participant_id: id }); });
  }
}

/** The browser's own confirmation: plain, keyboard-friendly, in the browser's language. */
function confirmAction(text) {
  return Promise.resolve(window.confirm(text));
}

export function renderLock() {
  $("locked-badge").hidden = !state.locked;
  const lock = $("lock-button");
  lock.setAttribute("aria-pressed", String(state.locked));
  setLabel(lock, state.locked ? t("Unlock the meeting") : t("Lock the meeting"));
  lock.title = state.locked ? t("The meeting is locked: newcomers wait. Press to unlock.") : t("Make newcomers wait in the waiting room");
}

export function setupModeration() {
  $("mute-all").addEventListener("click", () => session.signalling.send({ type: "mute", all: true }));
  $("mute-all").title = t("Turn off every microphone but yours");
  $("lock-button").addEventListener("click", () => session.signalling.send({ type: "lock", locked: !state.locked }));
  $("end-button").addEventListener("click", () => {
    confirmAction(t("End the meeting for everyone? Nobody can come back into this meeting's room."))
      .then((yes) => { if (yes) session.signalling.send({ type: "end" }); });
  });
  $("end-button").title = t("End the meeting for everyone");
}
