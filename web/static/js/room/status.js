// The room's status line (#room-status): short news for this person, which clears itself.

const $ = (id) => document.getElementById(id);

let sayTimer = 0;

/** A line in #room-status; it clears itself after a while so that it never tells old news. */
export function say(text, tone = "") {
  const box = $("room-status");
  box.textContent = text;
  box.dataset.tone = tone;
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => {
    if (box.textContent === text) box.textContent = "";
  }, tone === "problem" ? 30000 : 20000);
}
