"""Active speaker and audible-set detection (media.speakers), driven with simulated time: every
participant sends a level each 20 ms, and the detector is ticked after each round."""

from __future__ import annotations

from collections.abc import Mapping

from media.speakers import SPEAKING, SpeakerDetector

STEP = 0.02  # one audio packet each 20 ms
LOUD = 20  # −20 dBov: loudness 107
SILENT = 127


class Clock:
    """Simulated time; ``run`` feeds levels and ticks every 20 ms."""

    def __init__(self, detector: SpeakerDetector, start: float = 100.0) -> None:
        self.detector = detector
        self.start = start
        self.steps = 0

    @property
    def now(self) -> float:
        return self.start + self.steps * STEP

    def step(self, levels: Mapping[str, int]) -> bool:
        self.steps += 1
        for participant, level in levels.items():
            self.detector.level(participant, level, self.now)
        return self.detector.tick(self.now)

    def run(self, levels: Mapping[str, int], seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            self.step(levels)


def test_a_loud_participant_becomes_active_only_after_hold() -> None:
    detector = SpeakerDetector(hold=0.4)
    clock = Clock(detector)
    speaking_at: float | None = None
    active_at: float | None = None
    for _ in range(200):
        clock.step({"a": LOUD, "b": SILENT})
        if speaking_at is None and "a" in detector.audible:
            speaking_at = clock.now
            assert detector.active is None
        if detector.active == "a":
            active_at = clock.now
            break
        assert detector.active is None
    assert speaking_at is not None and active_at is not None
    # Smoothing: not speaking at once (the first level only moves loudness part of the way).
    assert speaking_at - clock.start > 0.1
    assert 0.4 - 1e-6 <= active_at - speaking_at <= 0.4 + STEP + 1e-6
    assert detector.recent == ["a"] and "b" not in detector.audible


def test_tick_reports_changes() -> None:
    detector = SpeakerDetector()
    clock = Clock(detector)
    changes = [clock.now for _ in range(100) if clock.step({"a": LOUD})]
    # Once when "a" becomes audible, once when "a" becomes active; nothing after.
    assert len(changes) == 2 and detector.active == "a"
    assert not clock.step({"a": LOUD})


def test_a_challenger_must_beat_the_current_speaker_by_margin() -> None:
    detector = SpeakerDetector(margin=6.0, hold=0.4)
    clock = Clock(detector)
    clock.run({"a": LOUD}, 1.5)
    assert detector.active == "a"
    # "b" is louder, but by 3 (< margin), for a long time: "a" stays.
    clock.run({"a": LOUD, "b": LOUD - 3}, 3.0)
    assert detector.loudness("b", clock.now) > detector.loudness("a", clock.now)
    assert detector.active == "a"
    # By 10 (> margin): "b" takes over.
    clock.run({"a": LOUD, "b": LOUD - 10}, 1.5)
    assert detector.active == "b"
    assert detector.recent == ["b", "a"]


def test_a_louder_challenger_still_waits_for_hold() -> None:
    detector = SpeakerDetector(margin=6.0, hold=0.4)
    clock = Clock(detector)
    clock.run({"a": LOUD, "b": SILENT}, 1.5)
    assert detector.active == "a"
    took_over: float | None = None
    loudest: float | None = None
    for _ in range(200):
        clock.step({"a": LOUD, "b": 0})
        now = clock.now
        if loudest is None and detector.loudness("b", now) > detector.loudness("a", now):
            loudest = now
        if detector.active == "b":
            took_over = now
            break
    assert loudest is not None and took_over is not None
    assert took_over - loudest >= 0.4 - 1e-6


def test_muted_participants_are_ignored() -> None:
    detector = SpeakerDetector()
    clock = Clock(detector)
    detector.set_muted("m", True)
    clock.run({"m": 0, "a": 60}, 2.0)  # "a" is quiet (loudness 67 < SPEAKING)
    assert detector.loudness("m", clock.now) == 0.0
    assert detector.active is None and detector.audible == [] and detector.recent == []
    # Unmuted, the same levels make "m" the active speaker.
    detector.set_muted("m", False)
    clock.run({"m": 0, "a": 60}, 1.0)
    assert detector.active == "m" and detector.audible == ["m"]
    # Muting the active speaker takes it out of the audible set at once.
    detector.set_muted("m", True)
    assert detector.tick(clock.now)
    assert detector.audible == []


def test_silence_after_a_pause_drops_loudness() -> None:
    detector = SpeakerDetector(silence_after=1.0)
    clock = Clock(detector)
    clock.run({"a": LOUD}, 1.5)
    assert detector.active == "a" and detector.audible == ["a"]
    last = clock.now
    assert detector.loudness("a", last + 0.9) >= SPEAKING
    assert detector.loudness("a", last + 1.1) == 0.0
    # No more packets from "a" (its stream stalled): after silence_after it is no longer audible.
    clock.run({}, 0.9)
    assert detector.audible == ["a"]
    clock.run({}, 0.2)
    assert detector.audible == []
    assert detector.recent == ["a"]  # still the most recent speaker


def test_audible_set_is_limited_with_hysteresis() -> None:
    detector = SpeakerDetector(audio_slots=2, margin=6.0)
    clock = Clock(detector)
    clock.run({"a": LOUD + 2, "b": LOUD}, 1.0)  # a: 105, b: 107
    assert detector.audible == ["b", "a"]  # arriving together: louder first
    # A newcomer louder than the quietest, but not by margin, gets no slot.
    clock.run({"a": LOUD + 2, "b": LOUD, "c": LOUD - 3}, 2.0)  # c: 110
    assert detector.audible == ["b", "a"]
    # Louder by more than margin: it replaces the quietest ("a"), in its place.
    clock.run({"a": LOUD + 2, "b": LOUD, "c": LOUD - 15}, 1.0)  # c: 122
    assert detector.audible == ["b", "c"]
    assert len(detector.audible) <= detector.audio_slots
    # A member who falls silent frees the slot for the next speaker, without a margin.
    clock.run({"a": LOUD + 2, "b": SILENT, "c": LOUD - 15}, 1.5)
    assert sorted(detector.audible) == ["a", "c"]


def test_quiet_participants_are_not_audible() -> None:
    detector = SpeakerDetector()
    clock = Clock(detector)
    clock.run({"a": 127 - SPEAKING + 10, "b": SILENT}, 2.0)
    assert detector.audible == [] and detector.active is None


def test_recent_is_most_recent_active_speaker_first() -> None:
    detector = SpeakerDetector()
    clock = Clock(detector)
    for speaker in ["a", "b", "a", "c"]:
        clock.run({p: (0 if p == speaker else SILENT) for p in "abc"}, 1.5)
        assert detector.active == speaker
    assert detector.recent == ["c", "a", "b"]


def test_forget_removes_someone_everywhere() -> None:
    detector = SpeakerDetector()
    clock = Clock(detector)
    clock.run({"a": 0, "b": LOUD}, 1.5)
    assert detector.active == "a" and "a" in detector.audible and "a" in detector.recent
    detector.set_muted("a", True)
    detector.forget("a")
    assert "a" not in detector.voices
    assert "a" not in detector.muted
    assert detector.active is None
    assert "a" not in detector.audible and "a" not in detector.recent
    assert detector.audible == ["b"]
    # The others carry on: "b" becomes active.
    clock.run({"b": LOUD}, 1.0)
    assert detector.active == "b" and detector.recent == ["b"]
    detector.forget("nobody")  # unknown participants are fine
