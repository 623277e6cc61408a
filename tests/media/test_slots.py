"""Slot assignment (media.slots): the fixed layout and who feeds which slot of one subscriber."""

from __future__ import annotations

from media.slots import AUDIO, FULL, SCREEN, SMALL, RoomView, SlotSpec, assign, layout

SPECS = layout(4, 3)
VIDEO_SLOTS = ["main", "thumb1", "thumb2", "thumb3", "thumb4", "screen"]


def who(assignment: dict[str, tuple[str, str] | None], slot: str) -> str | None:
    value = assignment[slot]
    return None if value is None else value[0]


def test_layout_names_and_kinds() -> None:
    assert [(s.name, s.kind) for s in layout(2, 1)] == [
        ("main", "video"), ("thumb1", "video"), ("thumb2", "video"), ("screen", "video"), ("audio1", "audio"),
    ]
    assert [s.name for s in SPECS] == [*VIDEO_SLOTS, "audio1", "audio2", "audio3"]
    assert [s.name for s in layout(0, 0)] == ["main", "screen"]
    assert all(isinstance(s, SlotSpec) for s in SPECS)


def test_every_slot_is_assigned_and_idle_slots_are_none() -> None:
    out = assign("me", SPECS, RoomView())
    assert list(out) == [s.name for s in SPECS]
    assert all(v is None for v in out.values())


def test_main_prefers_pinned_then_active_then_recent_then_first_camera() -> None:
    cameras = ["a", "b", "c", "d"]
    view = RoomView(cameras=cameras, pinned="d", active="c", recent=["b"])
    assert assign("me", SPECS, view)["main"] == ("d", FULL)
    view = RoomView(cameras=cameras, active="c", recent=["b"])
    assert assign("me", SPECS, view)["main"] == ("c", FULL)
    view = RoomView(cameras=cameras, recent=["b", "c"])
    assert assign("me", SPECS, view)["main"] == ("b", FULL)
    view = RoomView(cameras=cameras)
    assert assign("me", SPECS, view)["main"] == ("a", FULL)


def test_main_skips_candidates_without_a_camera() -> None:
    # The pinned and active participants publish no camera: the recent speaker with one wins.
    view = RoomView(cameras=["a", "b"], pinned="x", active="y", recent=["z", "b"])
    out = assign("me", SPECS, view)
    assert out["main"] == ("b", FULL)
    assert {who(out, s) for s in VIDEO_SLOTS} <= {"a", "b", None}


def test_nobody_receives_themselves() -> None:
    view = RoomView(
        cameras=["me", "a", "b"], screens=["me", "b"], pinned="me", active="me",
        recent=["me", "a"], audible=["me", "a", "b"],
    )
    out = assign("me", SPECS, view)
    assert "me" not in {who(out, s) for s in out}
    assert out["main"] == ("a", FULL)  # pinned, active and most recent are all "me"
    assert out["screen"] == ("b", SCREEN)
    assert [out["audio1"], out["audio2"], out["audio3"]] == [("a", AUDIO), ("b", AUDIO), None]


def test_thumbnails_exclude_main_recent_speakers_first_then_join_order_small_layer() -> None:
    view = RoomView(cameras=["a", "b", "c", "d", "e"], active="c", recent=["d", "c", "nocam", "b"])
    out = assign("me", SPECS, view)
    assert out["main"] == ("c", FULL)
    assert [out[f"thumb{i}"] for i in range(1, 5)] == [("d", SMALL), ("b", SMALL), ("a", SMALL), ("e", SMALL)]


def test_spare_thumbnails_are_idle_and_extra_cameras_are_left_out() -> None:
    out = assign("me", layout(2, 0), RoomView(cameras=["a", "b", "c", "d"]))
    assert out == {"main": ("a", FULL), "thumb1": ("b", SMALL), "thumb2": ("c", SMALL), "screen": None}
    out = assign("me", SPECS, RoomView(cameras=["me", "a", "b"]))
    assert [out[f"thumb{i}"] for i in range(1, 5)] == [("b", SMALL), None, None, None]


def test_weak_line_gets_the_small_layer_in_main() -> None:
    view = RoomView(cameras=["a", "b"])
    assert assign("me", SPECS, view, weak_line=True)["main"] == ("a", SMALL)
    assert assign("me", SPECS, view, weak_line=True)["thumb1"] == ("b", SMALL)
    assert assign("me", SPECS, view, weak_line=False)["main"] == ("a", FULL)


def test_screen_slot_gets_the_latest_sharer_but_not_oneself() -> None:
    assert assign("me", SPECS, RoomView(screens=["b", "a"]))["screen"] == ("b", SCREEN)
    assert assign("b", SPECS, RoomView(screens=["b", "a"]))["screen"] == ("a", SCREEN)
    assert assign("b", SPECS, RoomView(screens=["b"]))["screen"] is None
    # Sharing a screen does not need a camera, and the screen never lands in a camera slot.
    out = assign("me", SPECS, RoomView(screens=["s"]))
    assert out["main"] is None and out["screen"] == ("s", SCREEN)


def test_audio_slots_follow_the_audible_set_excluding_self() -> None:
    out = assign("b", SPECS, RoomView(audible=["a", "b", "c", "d", "e"]))
    assert [out["audio1"], out["audio2"], out["audio3"]] == [("a", AUDIO), ("c", AUDIO), ("d", AUDIO)]
    out = assign("me", SPECS, RoomView(audible=["a"]))
    assert [out["audio1"], out["audio2"], out["audio3"]] == [("a", AUDIO), None, None]


def test_participants_without_a_camera_are_never_in_video_slots() -> None:
    view = RoomView(cameras=["a"], pinned="x", active="y", recent=["y", "x", "z"], audible=["x", "y"])
    out = assign("me", SPECS, view)
    video = [who(out, s) for s in VIDEO_SLOTS if s != "screen"]
    assert video == ["a", None, None, None, None]
    # They are still heard.
    assert [who(out, "audio1"), who(out, "audio2")] == ["x", "y"]
