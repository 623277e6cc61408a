// The pre-join check: the camera preview, the device lists, the microphone level, what is wrong
// with a device and what the person can still do, and the three ways to join.

import { t } from "../i18n.js";
import * as media from "../media.js";
import { el } from "../dom.js";
import { config, state, local } from "./state.js";
import { stopTrack, stopLocal, meterMic, PROBLEMS } from "./devices.js";
import { connect } from "./connection.js";

const $ = (id) => document.getElementById(id);

let previewRun = 0;

async function startPreview() {
  const run = ++previewRun; // a newer choice of device wins over one still starting
  const status = $("prejoin-status");
  status.textContent = t("Starting the camera and the microphone…");
  status.dataset.tone = "";
  for (const id of ["join-button", "join-audio-only", "join-listen-only"]) $(id).disabled = true;
  stopLocal();
  const { stream, problem } = await media.openDevices({ cameraId: local.cameraId, micId: local.micId });
  if (state.view !== "prejoin" || run !== previewRun) {
    if (stream) stream.getTracks().forEach(stopTrack);
    return;
  }
  local.mic = stream ? stream.getAudioTracks()[0] || null : null;
  local.camera = stream ? stream.getVideoTracks()[0] || null : null;
  const preview = $("preview");
  preview.srcObject = local.camera ? new MediaStream([local.camera]) : null;
  $("preview-off").hidden = Boolean(local.camera);
  if (local.mic) {
    meterMic(local.mic);
  } else {
    $("mic-level").value = 0;
  }
  await fillDevices();
  explainDevices(problem);
  for (const id of ["join-button", "join-audio-only", "join-listen-only"]) $(id).disabled = false;
  $("join-audio-only").hidden = !local.mic;
}

function explainDevices(problem) {
  const status = $("prejoin-status");
  const parts = [];
  if (problem.video === "insecure" || problem.audio === "insecure") {
    parts.push(t("The camera and the microphone only work when this page is opened with https. Please tell the technical staff."));
  } else {
    if (problem.video && problem.video === problem.audio && PROBLEMS.both[problem.video]) {
      parts.push(PROBLEMS.both[problem.video]());
    } else {
      if (problem.video && PROBLEMS.camera[problem.video]) parts.push(PROBLEMS.camera[problem.video]());
      if (problem.audio && PROBLEMS.mic[problem.audio]) parts.push(PROBLEMS.mic[problem.audio]());
    }
    if (problem.video === "denied" || problem.audio === "denied") {
      parts.push(t("To allow it, click the camera or lock icon at the left of the address bar, choose Allow, then press Try again."));
    }
    if (problem.video === "busy" || problem.audio === "busy") parts.push(t("Close that program, then press Try again."));
  }
  if (!local.mic && !local.camera) {
    parts.push(t("You can still join to listen only: you will see and hear the meeting."));
  } else if (!local.camera) {
    parts.push(t("You can join with sound only: others will hear you but not see you."));
  } else if (!local.mic) {
    parts.push(t("Others will not hear you, but you will see and hear the meeting."));
  }
  const trouble = Boolean(problem.video || problem.audio);
  status.textContent = trouble ? parts.join(" ") : t("Your camera and microphone are ready.");
  status.dataset.tone = trouble ? "problem" : "ok";
  $("prejoin-retry").hidden = !trouble || problem.video === "insecure";
  // Only what can be used is offered: no device list for a blocked camera, and when nothing
  // works, listening is the one way in.
  $("camera-row").hidden = !local.camera;
  $("mic-row").hidden = !local.mic;
  $("join-camera-off-row").hidden = !local.camera;
  $("join-muted-row").hidden = !local.mic;
  const nothing = !local.mic && !local.camera;
  $("join-button").hidden = nothing;
  $("join-listen-only").classList.toggle("primary", nothing);
}

async function fillDevices() {
  const { cameras, mics } = await media.listDevices();
  const fill = (select, devices, current, fallback) => {
    select.replaceChildren();
    devices.forEach((device, index) => {
      const option = el("option", { value: device.deviceId }, device.label || fallback(index + 1));
      select.append(option);
    });
    if (current && current.getSettings) {
      const id = current.getSettings().deviceId;
      if (id) select.value = id;
    }
    select.disabled = devices.length < 2 && Boolean(current);
    if (!devices.length) select.append(el("option", { value: "" }, t("None found")));
  };
  fill($("camera-select"), cameras, local.camera, (n) => t("Camera {number}", { number: n }));
  fill($("mic-select"), mics, local.mic, (n) => t("Microphone {number}", { number: n }));
}

export function setupPrejoin() {
  const me = config.me || {};
  $("me-name").textContent = me.name || "";
  $("me-unit").textContent = me.unit || "";
  $("camera-select").addEventListener("change", (event) => {
    local.cameraId = event.target.value;
    startPreview();
  });
  $("mic-select").addEventListener("change", (event) => {
    local.micId = event.target.value;
    startPreview();
  });
  $("prejoin-retry").addEventListener("click", () => startPreview());
  $("join-button").addEventListener("click", () => join("full"));
  $("join-audio-only").addEventListener("click", () => join("audio"));
  $("join-listen-only").addEventListener("click", () => join("listen"));
  startPreview();
}

function join(mode) {
  if (state.view !== "prejoin") return;
  if (mode === "audio" || mode === "listen") {
    stopTrack(local.camera);
    local.camera = null;
  }
  if (mode === "listen") {
    if (local.meter) local.meter.stop();
    local.meter = null;
    stopTrack(local.mic);
    local.mic = null;
  }
  state.muted = $("join-muted").checked || !local.mic;
  state.camera = !$("join-camera-off").checked && Boolean(local.camera);
  if (local.mic) local.mic.enabled = !state.muted;
  if (local.camera) local.camera.enabled = state.camera;
  state.view = "joining";
  for (const id of ["join-button", "join-audio-only", "join-listen-only", "camera-select", "mic-select", "prejoin-retry"]) $(id).disabled = true;
  $("prejoin-status").dataset.tone = "";
  connect();
}
