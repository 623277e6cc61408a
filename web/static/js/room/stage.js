// The stage: the video tiles (the main picture, the shared screen, the thumbnails, your own
// picture), the hidden <audio> elements, and what each slot shows from the server's assignment.

import { t } from "../i18n.js";
import { el, icon } from "../dom.js";
import { config, state, local, THUMBNAILS } from "./state.js";

const $ = (id) => document.getElementById(id);

function unitOf(p) {
  return p && p.unit && p.unit.name !== p.name ? p.unit.name : "";
}

function initials(name) {
  const words = String(name || "").trim().split(/\s+/);
  const last = words[words.length - 1] || "";
  return last.charAt(0).toUpperCase();
}

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

export function buildTiles() {
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

/** The <video> or <audio> element of a slot, made if the server offers a slot we lack. */
export function ensureSlotElement(slot, kind) {
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

export function renderSlots() {
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

/** Your own tile: your camera (if on), your initial, your microphone state. */
export function showSelf() {
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

