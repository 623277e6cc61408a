// The connection test: publish the camera and the microphone to the SFU's echo room, receive
// them back (camera in the `main` slot, microphone in `audio1`), and judge the line every 2 s.

import { readConfig, t, formatNumber } from "./i18n.js";
import { Signalling } from "./signalling.js";
import * as media from "./media.js";

const config = readConfig("room-config");
const $ = (id) => document.getElementById(id);
const EVERY = 2000;

const test = {
  running: false, signalling: null, camera: null, small: null, mic: null, levels: null,
  publisher: null, subscription: null, meter: null, timer: 0, generation: 0, iceServers: config.iceServers || [],
  last: null, verdict: null,
};

function status(text, tone = "") {
  const box = $("echo-status");
  box.textContent = text;
  box.dataset.tone = tone;
}

function rate(kbps) {
  if (kbps === null) return "–";
  if (kbps >= 1000) return t("{value} Mbit/s", { value: formatNumber(kbps / 1000, 1) });
  return t("{value} kbit/s", { value: formatNumber(kbps) });
}

async function start() {
  test.running = true;
  $("echo-start").disabled = true;
  status(t("Starting the camera and the microphone…"));
  const { stream, problem } = await media.openDevices();
  if (!stream) {
    const denied = problem.video === "denied" || problem.audio === "denied";
    status(denied
      ? t("The browser is blocking the camera and the microphone. Click the camera or lock icon at the left of the address bar, choose Allow, then start again.")
      : t("No camera or microphone could be started on this computer."), "problem");
    test.running = false;
    $("echo-start").disabled = false;
    return;
  }
  test.camera = stream.getVideoTracks()[0] || null;
  test.mic = stream.getAudioTracks()[0] || null;
  if (test.camera) test.small = await media.smallLayer(test.camera);
  if (test.mic) test.levels = new media.LevelMeter(test.mic, (level) => { $("echo-mic-level").value = level; });
  if (!test.camera) status(t("No camera was found: only the sound and the line are tested."), "problem");
  test.signalling = new Signalling({
    path: config.wsPath,
    query: config.query || {},
    heartbeat: config.heartbeat || 15,
    makeJoin: () => ({ type: "join", protocol: 1, thumbnails: 0, muted: false, camera: Boolean(test.camera) }),
    onMessage,
    onState,
  });
  test.signalling.start();
  $("echo-start").textContent = t("Stop the test");
  $("echo-start").disabled = false;
  $("echo-listen").hidden = !test.mic;
}

function onState(connection, detail) {
  if (connection === "connecting") status(t("Connecting…"));
  if (connection === "reconnecting") {
    test.generation += 1;
    closePeers();
    status(detail.delay
      ? t("The connection was lost. Reconnecting in {seconds} seconds…", { seconds: Math.round(detail.delay / 1000) })
      : t("Reconnecting…"), "problem");
  }
  if (connection === "closed" && test.running) {
    status((detail.error && detail.error.message) || t("The server refused the connection."), "problem");
    stop(false);
  }
}

function onMessage(message) {
  if (message.type === "welcome") {
    if (message.ice_servers) test.iceServers = message.ice_servers;
    connectMedia();
  } else if (message.type === "rejoin") {
    connectMedia();
  } else if (message.type === "error") {
    status(message.message || message.code, "problem");
  }
}

async function connectMedia() {
  test.generation += 1;
  const generation = test.generation;
  closePeers();
  status(t("Connecting the picture and the sound…"));
  try {
    const tracks = [];
    if (test.camera) {
      tracks.push({ track: test.camera, layer: "camera", maxBitrate: media.FULL_BITRATE });
      tracks.push({ track: test.small, layer: "camera_small", maxBitrate: media.SMALL_BITRATE });
    }
    if (test.mic) tracks.push({ track: test.mic, layer: "audio" });
    const publisher = await media.publish(test.signalling, { stream: "camera", tracks, iceServers: test.iceServers });
    if (generation !== test.generation) return publisher.pc.close();
    test.publisher = publisher;
    const subscription = await media.subscribe(test.signalling, { iceServers: test.iceServers, onTrack });
    if (generation !== test.generation) return subscription.pc.close();
    test.subscription = subscription;
    test.meter = new media.LineMeter();
    clearInterval(test.timer);
    test.timer = setInterval(measure, EVERY);
    status(t("Measuring… The figures are updated every 2 seconds."));
  } catch (error) {
    if (generation !== test.generation || error.code === "closed") return;
    status(t("The picture and the sound could not be connected: {reason}", { reason: error.message }), "problem");
  }
}

function onTrack(slot, track) {
  if (slot === "main" && track.kind === "video") {
    $("echo-video").srcObject = new MediaStream([track]);
    $("echo-video").play().catch(() => {});
    $("echo-placeholder").hidden = true;
  } else if (slot === "audio1" && track.kind === "audio") {
    $("echo-audio").srcObject = new MediaStream([track]);
    $("echo-audio").muted = $("echo-listen").getAttribute("aria-pressed") !== "true";
  }
}

async function measure() {
  if (!test.publisher || !test.subscription) return;
  const figures = await test.meter.measure([test.publisher.pc, test.subscription.pc]);
  test.last = figures;
  $("echo-rtt").textContent = figures.rtt === null ? "–" : t("{ms} ms", { ms: formatNumber(figures.rtt) });
  $("echo-loss").textContent = figures.loss === null ? "–" : t("{percent} %", { percent: formatNumber(figures.loss, 1) });
  $("echo-bitrate").textContent = figures.sendKbps === null ? "–"
    : t("sent {sent}, received {received}", { sent: rate(figures.sendKbps), received: rate(figures.recvKbps) });
  const level = media.lineLevel(figures);
  const verdict = $("echo-verdict");
  test.verdict = level;
  if (!level) return;
  verdict.dataset.verdict = level;
  if (level === "good") verdict.textContent = t("Good line: you can take part with full picture and sound.");
  else if (level === "fair") verdict.textContent = t("Fair line: the picture may stutter at times. If it does, press Low bandwidth in the meeting.");
  else verdict.textContent = t("Weak line: join with Low bandwidth or Sound only, or move closer to the Wi-Fi, or use a cable.");
}

function closePeers() {
  for (const name of ["publisher", "subscription"]) {
    if (test[name]) test[name].pc.close();
    test[name] = null;
  }
  clearInterval(test.timer);
}

function stop(leave = true) {
  test.running = false;
  test.generation += 1;
  if (leave && test.signalling) test.signalling.leave();
  closePeers();
  for (const name of ["camera", "small", "mic"]) {
    if (test[name]) test[name].stop();
    test[name] = null;
  }
  if (test.levels) test.levels.stop();
  test.levels = null;
  $("echo-mic-level").value = 0;
  $("echo-video").srcObject = null;
  $("echo-placeholder").hidden = false;
  $("echo-start").textContent = t("Start the test");
  $("echo-listen").hidden = true;
  if (leave) status(t("The test is stopped."));
}

$("echo-start").addEventListener("click", () => (test.running ? stop() : start()));
$("echo-listen").addEventListener("click", () => {
  const button = $("echo-listen");
  const on = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(on));
  $("echo-audio").muted = !on;
  if (on) $("echo-audio").play().catch(() => {});
});

window.giaobanEcho = {
  test,
  async inboundVideo() {
    const figures = await media.inboundVideo(test.subscription);
    return figures.map((f) => ({ slot: f.slot, framesDecoded: f.framesDecoded, frameWidth: f.frameWidth, frameHeight: f.frameHeight }));
  },
};
