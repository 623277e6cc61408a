// The meeting room: the pre-join check, the lobby, the room itself (video slots, participants,
// chat, the chair's controls) and recovery from dropped connections. Protocol: docs/signalling.md.
//
// This is the page's entry: it wires the modules in room/, one concept each. Imports go one way
// (this entry → features → room/state.js and the shared dom.js, i18n.js, media.js).

import { t } from "./i18n.js";
import { setupPrejoin } from "./room/prejoin.js";
import { setupControls } from "./room/controls.js";
import { setupQuality } from "./room/quality.js";
import { setupModeration, renderLock } from "./room/moderation.js";
import { setupKeyboard } from "./room/keyboard.js";
import { setupChat } from "./room/chat.js";
import { closePeers } from "./room/peers.js";
import { leave } from "./room/views.js";
import { exposeForInspection } from "./room/inspect.js";

const $ = (id) => document.getElementById(id);

function setupRoom() {
  setupControls();
  setupQuality();
  $("leave-button").addEventListener("click", leave);
  $("lobby-leave").addEventListener("click", leave);
  setupModeration();
  $("leave-button").title = t("Leave the meeting; the others stay");
  setupKeyboard();
  window.addEventListener("pagehide", () => {
    closePeers();
  });
  setupChat();
  renderLock();
}

exposeForInspection();
setupRoom();
setupPrejoin();
