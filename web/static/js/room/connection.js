// The signalling connection: opening it on join (with what the server must know about us), and
// what the page shows while it connects, drops and reconnects. A dropped socket also drops the
// media: the server forgets us, and the welcome that follows starts it again.

import { t } from "../i18n.js";
import { Signalling } from "../signalling.js";
import { config, state, rtc, session, THUMBNAILS } from "./state.js";
import { closePeers } from "./peers.js";
import { finalFromClose } from "./views.js";
import { onMessage } from "./messages.js";

const $ = (id) => document.getElementById(id);

export function connect() {
  session.signalling = new Signalling({
    path: config.wsPath,
    query: config.query || {},
    heartbeat: config.heartbeat || 15,
    makeJoin: () => ({
      type: "join", protocol: 1, thumbnails: THUMBNAILS, weak_line: state.weakLine, muted: state.muted, camera: state.camera,
    }),
    onMessage,
    onState: onConnectionState,
  });
  session.signalling.start();
}

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
