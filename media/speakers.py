"""Who is speaking, from the RFC 6464 audio levels publishers put on their audio packets.

A level is −dBov: 0 is the loudest, 127 silence. Each participant's loudness (127 − level)
is smoothed over about 300 ms. Hysteresis keeps the picture calm: someone becomes the *active
speaker* only after being the loudest for ``hold`` seconds and clearly louder (``margin``) than
the current one, and the set of *audible* participants (who gets an audio slot) changes only when
a newcomer is louder than the quietest member by ``margin``. Muted participants take no part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPEAKING = 127 - 45  # loudness above which someone counts as speaking (−45 dBov)


@dataclass
class _Voice:
    loudness: float = 0.0
    updated: float = 0.0
    loudest_since: float | None = None


@dataclass
class SpeakerDetector:
    audio_slots: int = 3
    margin: float = 6.0
    hold: float = 0.4
    smoothing: float = 0.3  # seconds
    silence_after: float = 1.0  # a voice with no packets for this long counts as silent
    voices: dict[str, _Voice] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)
    active: str | None = None
    audible: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)  # most recent active speakers first

    def level(self, participant_id: str, level: int, now: float) -> None:
        loudness = max(0, 127 - min(127, level))
        voice = self.voices.setdefault(participant_id, _Voice(updated=now))  # starts silent: one click is not speech
        alpha = min(1.0, max(0.05, max(0.0, now - voice.updated) / self.smoothing))
        voice.loudness += alpha * (loudness - voice.loudness)
        voice.updated = now

    def set_muted(self, participant_id: str, muted: bool) -> None:
        (self.muted.add if muted else self.muted.discard)(participant_id)

    def forget(self, participant_id: str) -> None:
        self.voices.pop(participant_id, None)
        self.muted.discard(participant_id)
        if self.active == participant_id:
            self.active = None
        self.audible = [p for p in self.audible if p != participant_id]
        self.recent = [p for p in self.recent if p != participant_id]

    def loudness(self, participant_id: str, now: float) -> float:
        voice = self.voices.get(participant_id)
        if voice is None or participant_id in self.muted or now - voice.updated > self.silence_after:
            return 0.0
        return voice.loudness

    def tick(self, now: float) -> bool:
        """Re-evaluate; True when the active speaker or the audible set changed."""
        loud = {p: self.loudness(p, now) for p in self.voices}
        speaking = sorted((p for p, v in loud.items() if v >= SPEAKING), key=lambda p: -loud[p])
        changed = self._update_audible(loud, speaking)
        return self._update_active(loud, speaking, now) or changed

    def _update_audible(self, loud: dict[str, float], speaking: list[str]) -> bool:
        kept = [p for p in self.audible if loud.get(p, 0.0) >= SPEAKING]
        for candidate in speaking:
            if candidate in kept:
                continue
            if len(kept) < self.audio_slots:
                kept.append(candidate)
                continue
            quietest = min(kept, key=lambda p: loud[p])
            if loud[candidate] > loud[quietest] + self.margin:
                kept[kept.index(quietest)] = candidate
        if kept != self.audible:
            self.audible = kept
            return True
        return False

    def _update_active(self, loud: dict[str, float], speaking: list[str], now: float) -> bool:
        if not speaking:
            for voice in self.voices.values():
                voice.loudest_since = None
            return False
        top = speaking[0]
        for p, voice in self.voices.items():
            if p != top:
                voice.loudest_since = None
        voice = self.voices[top]
        if top == self.active:
            return False
        if voice.loudest_since is None:
            voice.loudest_since = now
        current = loud.get(self.active, 0.0) if self.active else 0.0
        clearly = current < SPEAKING or loud[top] > current + self.margin
        if clearly and now - voice.loudest_since >= self.hold:
            self.active = top
            self.recent = [top] + [p for p in self.recent if p != top]
            return True
        return False
