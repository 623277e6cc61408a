// The room's keyboard shortcuts: M turns the microphone on or off, V the camera (not while
// typing in a field, nor with a modifier key, nor on key repeat).

import { state } from "./state.js";
import { toggleMute, toggleCamera } from "./controls.js";

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

export function setupKeyboard() {
  document.addEventListener("keydown", onKey);
}
