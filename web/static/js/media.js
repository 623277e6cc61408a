// Camera, microphone and screen; publishing to the SFU and receiving its slots
// (docs/signalling.md, "Media"); line measurements from getStats.

export const FULL_BITRATE = 1200000;
export const SMALL_BITRATE = 150000;
export const WEAK_FULL_BITRATE = 400000;
export const SCREEN_BITRATE = 1500000;
const ICE_GATHERING_LIMIT = 3000; // ms; no trickle: the candidates travel in the SDP

/** Constraints for the camera at full size and the microphone, with the chosen devices. */
export function constraints({ video = true, audio = true, cameraId = "", micId = "" } = {}) {
  return {
    video: video
      ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 }, ...(cameraId ? { deviceId: { exact: cameraId } } : {}) }
      : false,
    audio: audio
      ? { echoCancellation: true, noiseSuppression: true, autoGainControl: true, ...(micId ? { deviceId: { exact: micId } } : {}) }
      : false,
  };
}

export function mediaAvailable() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/**
 * Ask for the camera and the microphone; when both cannot be had, find out which one can.
 * Returns {stream, problem: {video, audio}} where a problem is "" | "denied" | "missing" | "busy" | "other".
 */
export async function openDevices({ video = true, audio = true, cameraId = "", micId = "" } = {}) {
  const problem = { video: "", audio: "" };
  if (!mediaAvailable()) {
    return { stream: null, problem: { video: video ? "insecure" : "", audio: audio ? "insecure" : "" } };
  }
  if (!video && !audio) return { stream: null, problem };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints({ video, audio, cameraId, micId }));
    return { stream, problem };
  } catch (error) {
    if (!(video && audio) || error.name === "NotAllowedError" || error.name === "SecurityError") {
      const kind = describe(error);
      return { stream: null, problem: { video: video ? kind : "", audio: audio ? kind : "" } };
    }
  }
  // Both together failed: one of them may still work on its own.
  const tracks = [];
  for (const kind of ["audio", "video"]) {
    try {
      const alone = await navigator.mediaDevices.getUserMedia(constraints({ video: kind === "video", audio: kind === "audio", cameraId, micId }));
      tracks.push(...alone.getTracks());
    } catch (error) {
      problem[kind] = describe(error);
    }
  }
  return { stream: tracks.length ? new MediaStream(tracks) : null, problem };
}

function describe(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "missing";
    case "NotReadableError":
    case "AbortError":
      return "busy";
    default:
      return "other";
  }
}

/** The small layer: a copy of the camera track scaled to 320×180 at 15 frames a second. */
export async function smallLayer(track) {
  const small = track.clone();
  try {
    await small.applyConstraints({ width: { ideal: 320, max: 320 }, height: { ideal: 180, max: 180 }, frameRate: { ideal: 15, max: 15 } });
  } catch (error) {
    try {
      await small.applyConstraints({ width: 320, height: 180, frameRate: 15 });
    } catch (again) { /* the encoder's bitrate cap still keeps it small */ }
  }
  return small;
}

/** Wait until the peer connection has gathered its candidates (or a short limit has passed). */
export function iceGathered(pc, limit = ICE_GATHERING_LIMIT) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, limit);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** Put `mimeType` first among the codecs a transceiver offers (the others stay, as fallbacks). */
function preferCodec(transceiver, kind, mimeType) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpSender || !RTCRtpSender.getCapabilities) return;
  const capabilities = RTCRtpSender.getCapabilities(kind);
  if (!capabilities) return;
  const wanted = mimeType.toLowerCase();
  const first = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (!first.length) return;
  const rest = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  try {
    transceiver.setCodecPreferences([...first, ...rest]);
  } catch (error) { /* keep the browser's order */ }
}

export async function setMaxBitrate(sender, maxBitrate) {
  if (!sender || !sender.getParameters) return;
  const parameters = sender.getParameters();
  if (!parameters.encodings || !parameters.encodings.length) parameters.encodings = [{}];
  parameters.encodings[0].maxBitrate = maxBitrate;
  try {
    await sender.setParameters(parameters);
  } catch (error) { /* not negotiated yet, or not supported: the SDP still limits it */ }
}

/**
 * Publish one stream ("camera" or "screen") on its own peer connection.
 * `tracks` is a list of {track, layer, maxBitrate}; returns {pc, senders: {layer: RTCRtpSender}}.
 */
export async function publish(signalling, { stream, tracks, iceServers = [] }) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  try {
    const entries = tracks.map(({ track, layer, maxBitrate }) => {
      const init = { direction: "sendonly" };
      if (track.kind === "video" && maxBitrate) init.sendEncodings = [{ maxBitrate }];
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === "video") preferCodec(transceiver, "video", "video/VP8");
      return { transceiver, layer, maxBitrate };
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    const layers = {};
    for (const { transceiver, layer } of entries) layers[transceiver.mid] = layer;
    const answer = await signalling.request({ type: "publish", stream, sdp: pc.localDescription.sdp, tracks: layers });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    const senders = {};
    for (const { transceiver, layer, maxBitrate } of entries) {
      senders[layer] = transceiver.sender;
      if (maxBitrate) await setMaxBitrate(transceiver.sender, maxBitrate);
    }
    return { pc, senders };
  } catch (error) {
    pc.close();
    throw error;
  }
}

/**
 * Receive the SFU's slots: send subscribe, answer its offer on a new peer connection.
 * `onTrack(slot, track)` is called for each slot's track. Returns {pc, slots, slotByMid}.
 */
export async function subscribe(signalling, { iceServers = [], onTrack }) {
  const offer = await signalling.request({ type: "subscribe" });
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  const slotByMid = new Map((offer.slots || []).map((s) => [s.mid, s.slot]));
  pc.addEventListener("track", (event) => {
    const slot = slotByMid.get(event.transceiver.mid);
    if (slot) onTrack(slot, event.track, event.transceiver);
  });
  try {
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGathered(pc);
    if (!signalling.send({ type: "subscribe_answer", sdp: pc.localDescription.sdp })) throw new Error("closed");
  } catch (error) {
    pc.close();
    throw error;
  }
  return { pc, slots: offer.slots || [], slotByMid };
}

/** The inbound-rtp video figures of a receiving connection, per slot. */
export async function inboundVideo(subscription) {
  if (!subscription || !subscription.pc) return [];
  const out = [];
  for (const transceiver of subscription.pc.getTransceivers()) {
    const track = transceiver.receiver && transceiver.receiver.track;
    if (!track || track.kind !== "video") continue;
    const slot = subscription.slotByMid.get(transceiver.mid) || null;
    const entry = {
      slot, mid: transceiver.mid, framesDecoded: 0, frameWidth: 0, frameHeight: 0, bytesReceived: 0, packetsReceived: 0,
      framesReceived: 0, keyFramesDecoded: 0, pliCount: 0,
    };
    try {
      const report = await transceiver.receiver.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp") {
          entry.framesDecoded = s.framesDecoded || 0;
          entry.frameWidth = s.frameWidth || 0;
          entry.frameHeight = s.frameHeight || 0;
          entry.bytesReceived = s.bytesReceived || 0;
          entry.packetsReceived = s.packetsReceived || 0;
          entry.framesReceived = s.framesReceived || 0;
          entry.keyFramesDecoded = s.keyFramesDecoded || 0;
          entry.pliCount = s.pliCount || 0;
        }
      });
    } catch (error) { /* closed meanwhile */ }
    out.push(entry);
  }
  return out;
}

/**
 * Round-trip time (ms), loss (%) and bitrates (kbit/s) across some peer connections, from the
 * difference between two getStats readings.
 */
export class LineMeter {
  constructor() {
    this.previous = new Map();
    this.at = 0;
  }

  async measure(pcs) {
    const now = performance.now();
    const current = new Map();
    let rtt = null;
    let reportedRtt = null;
    let upLoss = null;
    let index = 0;
    for (const pc of pcs) {
      index += 1;
      if (!pc || pc.connectionState === "closed") continue;
      let report;
      try {
        report = await pc.getStats();
      } catch (error) {
        continue;
      }
      let pairId = null;
      report.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
      });
      report.forEach((s) => {
        const key = index + ":" + s.id;
        if (s.type === "candidate-pair" && (pairId ? s.id === pairId : s.nominated && s.state === "succeeded")) {
          if (typeof s.currentRoundTripTime === "number") rtt = Math.max(rtt || 0, s.currentRoundTripTime * 1000);
        } else if (s.type === "inbound-rtp") {
          current.set(key, { lost: Math.max(0, s.packetsLost || 0), received: s.packetsReceived || 0, bytesIn: s.bytesReceived || 0 });
        } else if (s.type === "outbound-rtp") {
          current.set(key, { bytesOut: s.bytesSent || 0 });
        } else if (s.type === "remote-inbound-rtp") {
          if (typeof s.fractionLost === "number") upLoss = Math.max(upLoss || 0, s.fractionLost * 100);
          if (typeof s.roundTripTime === "number") reportedRtt = Math.max(reportedRtt || 0, s.roundTripTime * 1000);
        }
      });
    }
    let lost = 0;
    let received = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    for (const [key, value] of current) {
      const before = this.previous.get(key) || {};
      lost += Math.max(0, (value.lost || 0) - (before.lost || 0));
      received += Math.max(0, (value.received || 0) - (before.received || 0));
      bytesIn += Math.max(0, (value.bytesIn || 0) - (before.bytesIn || 0));
      bytesOut += Math.max(0, (value.bytesOut || 0) - (before.bytesOut || 0));
    }
    const seconds = this.at ? (now - this.at) / 1000 : 0;
    this.previous = current;
    this.at = now;
    const downLoss = lost + received > 0 ? (100 * lost) / (lost + received) : null;
    const losses = [downLoss, upLoss].filter((v) => v !== null);
    return {
      rtt: rtt !== null ? rtt : reportedRtt,
      loss: losses.length ? Math.max(...losses) : null,
      recvKbps: seconds > 0 ? (bytesIn * 8) / 1000 / seconds : null,
      sendKbps: seconds > 0 ? (bytesOut * 8) / 1000 / seconds : null,
    };
  }
}

/** good: rtt < 150 ms and loss < 1 %; fair: rtt < 400 ms and loss < 5 %; else poor (null: unknown). */
export function lineLevel({ rtt, loss }) {
  if (rtt === null && loss === null) return null;
  const r = rtt === null ? 0 : rtt;
  const l = loss === null ? 0 : loss;
  if (r < 150 && l < 1) return "good";
  if (r < 400 && l < 5) return "fair";
  return "poor";
}

/** A live level (0…1) of a microphone track, from an AnalyserNode, reported ~10 times a second. */
export class LevelMeter {
  constructor(track, onLevel) {
    const Context = window.AudioContext || window.webkitAudioContext;
    this.timer = 0;
    this.track = track.clone(); // still measured while the sent track is muted
    if (!Context) return;
    this.context = new Context();
    const source = this.context.createMediaStreamSource(new MediaStream([this.track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    source.connect(this.analyser);
    const data = new Float32Array(this.analyser.fftSize);
    this.resume = () => { if (this.context && this.context.state === "suspended") this.context.resume().catch(() => {}); };
    this.resume();
    document.addEventListener("pointerdown", this.resume);
    document.addEventListener("keydown", this.resume);
    this.timer = setInterval(() => {
      this.analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (let i = 0; i < data.length; i += 1) sum += data[i] * data[i];
      const rms = Math.sqrt(sum / data.length);
      const db = rms > 0 ? 20 * Math.log10(rms) : -100;
      onLevel(Math.min(1, Math.max(0, (db + 60) / 50)));
    }, 100);
  }

  stop() {
    clearInterval(this.timer);
    this.track.stop();
    if (this.resume) {
      document.removeEventListener("pointerdown", this.resume);
      document.removeEventListener("keydown", this.resume);
    }
    if (this.context) this.context.close().catch(() => {});
    this.context = null;
  }
}

/** The cameras and microphones (labels are known once permission was given). */
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return { cameras: [], mics: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput"),
    mics: devices.filter((d) => d.kind === "audioinput"),
  };
}
