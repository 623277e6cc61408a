// The list of people in the meeting, grouped by unit: each person's role, microphone, camera,
// raised hand and line, and (for the chair and hosts) the buttons to act on them. Entries are
// kept and updated in place rather than rebuilt on each change.

import { t } from "../i18n.js";
import { el, icon } from "../dom.js";
import { state, moderates, isMe } from "./state.js";
import { personAction } from "./moderation.js";

const $ = (id) => document.getElementById(id);

const entries = new Map(); // participant id → li

const ROLE_ORDER = { chair: 0, host: 1, participant: 2, guest: 3 };

function roleName(p) {
  if (p.role === "chair") return t("Chair");
  if (p.role === "host") return t("Moderator");
  if (p.role === "guest") return t("Guest");
  return "";
}

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

export function renderParticipants() {
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
