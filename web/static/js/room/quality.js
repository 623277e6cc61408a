// The line and the quality asked for: measuring the connection every few seconds, telling the
// server when the line changes, proposing low-bandwidth mode on a lossy line, and the
// low-bandwidth and sound-only choices.

import { t } from "../i18n.js";
import * as media from "../media.js";
import { state, rtc, session } from "./state.js";
import { say } from "./status.js";
import { renderOwnControls } from "./controls.js";

const MEASURE_EVERY = 5000; // ms between line measurements
const WEAK_LOSS = 5; // % of packets lost before proposing low-bandwidth mode…
const WEAK_ROUNDS = 2; // …for this many measurements in a row (about 10 s)
const $ = (id) => document.getElementById(id);

const line = { meter: new media.LineMeter(), timer: 0, pending: null, pendingCount: 0, lossRounds: 0, dismissedAt: 0, last: null };

export function startMeasuring() {
  clearInterval(line.timer);
  line.timer = setInterval(measureLine, MEASURE_EVERY);
}

export function stopMeasuring() {
  clearInterval(line.timer);
}

/** The last line measurement: {rtt, loss, recvKbps, sendKbps}. */
export function lastLine() {
  return line.last;
}

async function measureLine() {
  if (state.view !== "room" || state.connection !== "connected") return;
  const pcs = [rtc.camera, rtc.screen, rtc.sub].filter(Boolean).map((x) => x.pc);
  if (!pcs.length) return;
  const figures = await line.meter.measure(pcs);
  line.last = figures;
  const level = media.lineLevel(figures);
  if (level && level !== state.network) {
    // A change counts once it is seen twice in a row (or at once, the first time).
    if (state.network === null || line.pending === level) {
      state.network = level;
      line.pending = null;
      session.signalling.send({ type: "update", network: level });
    } else {
      line.pending = level;
    }
  } else {
    line.pending = null;
  }
  line.lossRounds = figures.loss !== null && figures.loss > WEAK_LOSS ? line.lossRounds + 1 : 0;
  const banner = $("bandwidth-banner");
  if (line.lossRounds >= WEAK_ROUNDS && !state.weakLine && Date.now() - line.dismissedAt > 300000) banner.hidden = false;
  if (state.weakLine) banner.hidden = true;
}

function setQuality(weakLine, audioOnly) {
  state.weakLine = weakLine;
  state.audioOnly = weakLine && audioOnly;
  session.signalling.send({ type: "quality", weak_line: state.weakLine, audio_only: state.audioOnly });
  if (rtc.camera && rtc.camera.senders.camera) {
    media.setMaxBitrate(rtc.camera.senders.camera, state.weakLine ? media.WEAK_FULL_BITRATE : media.FULL_BITRATE);
  }
  renderOwnControls();
  if (state.audioOnly) say(t("Sound only: you no longer receive video, which saves the most bandwidth."));
  else if (state.weakLine) say(t("Low-bandwidth mode: you receive smaller pictures. Press Sound only to save more."));
  else say(t("Normal quality again."));
}

export function setupQuality() {
  $("low-bandwidth-button").addEventListener("click", () => setQuality(!state.weakLine, false));
  $("audio-only-button").addEventListener("click", () => setQuality(true, !state.audioOnly));
  $("bandwidth-accept").addEventListener("click", () => {
    $("bandwidth-banner").hidden = true;
    setQuality(true, false);
  });
  $("bandwidth-dismiss").addEventListener("click", () => {
    $("bandwidth-banner").hidden = true;
    line.dismissedAt = Date.now();
  });
}
