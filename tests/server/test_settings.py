from __future__ import annotations

import pytest

from server.__main__ import main
from server.settings import DEMO_SECRET_KEY, UnsafeSettings, load_settings


def test_settings_come_from_giaoban_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIAOBAN_PORT", "8123")
    monkeypatch.setenv("GIAOBAN_PUBLIC_URL", "https://giaoban.cantho.gov.vn/")
    monkeypatch.setenv("GIAOBAN_DATABASE_URL", "postgresql+psycopg://db/giaoban")
    settings = load_settings()
    assert settings.port == 8123
    assert settings.effective_public_url == "https://giaoban.cantho.gov.vn"
    assert settings.secure_cookies
    assert settings.database_url == "postgresql+psycopg://db/giaoban"


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIAOBAN_PORT", "eighty")
    with pytest.raises(UnsafeSettings, match="GIAOBAN_PORT"):
        load_settings()


def test_demo_mode_runs_without_a_secret_key() -> None:
    settings = load_settings(demo=True, secret_key="")
    settings.check_safe()
    assert settings.effective_secret_key == DEMO_SECRET_KEY


def test_production_refuses_to_start_without_a_secret_key() -> None:
    with pytest.raises(UnsafeSettings, match="GIAOBAN_SECRET_KEY"):
        load_settings(demo=False, secret_key="").check_safe()
    with pytest.raises(UnsafeSettings, match="GIAOBAN_SECRET_KEY"):
        load_settings(demo=False, secret_key="short").check_safe()
    load_settings(demo=False, secret_key="x" * 40).check_safe()


def test_serve_stops_with_a_clear_message_outside_demo_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GIAOBAN_DEMO", raising=False)
    monkeypatch.delenv("GIAOBAN_SECRET_KEY", raising=False)
    assert main(["serve"]) == 2
    assert "GIAOBAN_SECRET_KEY" in capsys.readouterr().err


def test_serve_refuses_a_database_that_still_has_demo_accounts(
    settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("GIAOBAN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GIAOBAN_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("GIAOBAN_DEMO", "0")
    assert main(["serve"]) == 2
    assert "demo accounts" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "value"), [
    ("GIAOBAN_MEDIA_ADDRESSES", "127.0.0.1, not-an-address"),
    ("GIAOBAN_MEDIA_ANNOUNCED_ADDRESS", "gov.vn"),
    ("GIAOBAN_MEDIA_REMOTE_NETWORKS", "10.0.0.0/33"),
    ("GIAOBAN_SFU_VIDEO_CODEC", "VP9"),
    ("GIAOBAN_SFU_ROOM_SPREAD", "-1"),
    ("GIAOBAN_SFU_WORKERS", "0"),
    ("GIAOBAN_ICE_SERVERS", '[{"url": "turn:x"}]'),
    ("GIAOBAN_ICE_SERVERS", "not json"),
])
def test_a_bad_media_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UnsafeSettings, match=name):
        load_settings()


def test_media_settings_reach_the_sfu_configuration() -> None:
    config = load_settings(media_addresses=" 10.20.0.5 ,127.0.0.1", media_announced_address="203.0.113.7",
                           media_remote_networks="10.0.0.0/8", sfu_video_codec="h264").media_config()
    assert config.addresses == ("10.20.0.5", "127.0.0.1") and config.announced_address == "203.0.113.7"
    assert config.remote_networks == ("10.0.0.0/8",) and config.video_codec == "H264"
