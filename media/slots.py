"""Which participant feeds which of a subscriber's slots: a pure function of the room's state.

Every subscriber receives the same fixed set of slots (``layout``); ``assign`` fills them for
one subscriber: ``main`` — the pinned participant, else the active speaker, else the most recent
speaker, else the first camera (full layer; small on a weak line); ``thumbN`` — recent speakers,
then other cameras in join order (small layer); ``screen`` — the latest screen share;
``audioN`` — the audible (loudest unmuted) speakers. Nobody receives themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FULL, SMALL, SCREEN, AUDIO = "camera", "camera_small", "screen", "audio"
LAYERS = (FULL, SMALL, SCREEN, AUDIO)


@dataclass(frozen=True)
class SlotSpec:
    name: str
    kind: str  # audio | video


def layout(thumbnails: int, audio: int) -> list[SlotSpec]:
    specs = [SlotSpec("main", "video")]
    specs += [SlotSpec(f"thumb{i}", "video") for i in range(1, thumbnails + 1)]
    specs.append(SlotSpec("screen", "video"))
    specs += [SlotSpec(f"audio{i}", "audio") for i in range(1, audio + 1)]
    return specs


@dataclass(frozen=True)
class RoomView:
    """What the assignment looks at; lists are in a meaningful order (join order, recency)."""

    cameras: Sequence[str] = ()  # participants publishing a camera, in join order
    screens: Sequence[str] = ()  # screen sharers, most recent first
    pinned: str | None = None
    active: str | None = None
    recent: Sequence[str] = ()  # most recent speakers first
    audible: Sequence[str] = ()


Assignment = dict[str, tuple[str, str] | None]  # slot → (participant, layer) or idle


def assign(me: str | None, specs: Sequence[SlotSpec], view: RoomView, *, weak_line: bool = False,
           audio_only: bool = False) -> Assignment:
    """``me`` None: a connection test, where one receives oneself; ``audio_only`` leaves every
    video slot idle (a very weak line)."""
    if audio_only:
        view = RoomView(audible=view.audible, active=view.active, recent=view.recent)
    cameras = [p for p in view.cameras if p != me]
    has_camera = set(cameras)
    main: str | None = None
    for candidate in (view.pinned, view.active, *view.recent, *cameras):
        if candidate is not None and candidate in has_camera:
            main = candidate
            break
    thumbs = [p for p in dict.fromkeys([*view.recent, *cameras]) if p in has_camera and p != main]
    screens = [p for p in view.screens if p != me]
    voices = [p for p in view.audible if p != me]
    out: Assignment = {}
    for spec in specs:
        if spec.name == "main":
            out["main"] = (main, SMALL if weak_line else FULL) if main else None
        elif spec.name.startswith("thumb"):
            out[spec.name] = (thumbs.pop(0), SMALL) if thumbs else None
        elif spec.name == "screen":
            out["screen"] = (screens[0], SCREEN) if screens else None
        else:
            out[spec.name] = (voices.pop(0), AUDIO) if voices else None
    return out
