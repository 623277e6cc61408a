// window.giaobanRoom: what the browser tests (and someone debugging in the console) read from
// the page — its state, the video it receives and sends, and the last line measurement.

import * as media from "../media.js";
import { state, rtc } from "./state.js";
import { lastLine } from "./quality.js";

export function exposeForInspection() {
  window.giaobanRoom = {
    state,
    async inboundVideo() {
      const figures = await media.inboundVideo(rtc.sub);
      return figures.map((f) => ({
        slot: f.slot,
        participantId: (state.slots[f.slot] && state.slots[f.slot].participantId) || null,
        framesDecoded: f.framesDecoded,
        frameWidth: f.frameWidth,
        frameHeight: f.frameHeight,
        packetsReceived: f.packetsReceived,
        keyFramesDecoded: f.keyFramesDecoded,
        pliCount: f.pliCount,
      }));
    },
    /** What this page sends: per camera layer (and the screen), the outbound-rtp figures. */
    async outboundVideo() {
      const out = [];
      for (const published of [rtc.camera, rtc.screen]) {
        if (!published) continue;
        for (const [layer, sender] of Object.entries(published.senders)) {
          if (!sender.track || sender.track.kind !== "video") continue;
          const report = await sender.getStats();
          report.forEach((s) => {
            if (s.type === "outbound-rtp") {
              out.push({
                layer, framesSent: s.framesSent || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
                qualityLimitationReason: s.qualityLimitationReason || "", targetBitrate: s.targetBitrate || 0,
                keyFramesEncoded: s.keyFramesEncoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0,
              });
            }
          });
        }
      }
      return out;
    },
    /** The last line measurement: {rtt, loss, recvKbps, sendKbps}. */
    line: () => lastLine(),
  };
}
