from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.__main__ import main
from server.settings import DEMO_KEY_FILE, UnsafeSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]


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


def test_demo_mode_runs_without_a_secret_key_on_a_random_one_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(demo=True, secret_key="", var_dir=tmp_path / "var")
    settings.check_safe()
    key = settings.effective_secret_key
    assert len(key) >= 48 and key == (tmp_path / "var" / DEMO_KEY_FILE).read_text().strip()
    assert stat.S_IMODE((tmp_path / "var" / DEMO_KEY_FILE).stat().st_mode) == 0o600
    assert "demo-only-secret-key" not in key  # the constant once published in the source
    # Kept across starts; another demo (another var/) has another key.
    assert load_settings(demo=True, var_dir=tmp_path / "var").effective_secret_key == key
    assert load_settings(demo=True, var_dir=tmp_path / "other").effective_secret_key != key
    # A key that is set wins, and no file is made for it.
    assert load_settings(demo=True, secret_key="s" * 40, var_dir=tmp_path / "set").effective_secret_key == "s" * 40
    assert not (tmp_path / "set").exists()


def test_processes_starting_at_once_share_one_demo_key(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib; from server.settings import demo_secret_key; "
        "key, made = demo_secret_key(pathlib.Path(sys.argv[1])); print(key, made)"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "var")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    answers = [p.communicate(timeout=60)[0].split() for p in processes]
    assert len({key for key, _ in answers}) == 1, answers
    assert [made for _, made in answers].count("True") == 1
    assert [p.name for p in (tmp_path / "var").iterdir()] == [DEMO_KEY_FILE]  # no draft left behind


def test_outside_demo_mode_there_is_no_fallback_key(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettings, match="GIAOBAN_SECRET_KEY"):
        _ = load_settings(demo=False, secret_key="", var_dir=tmp_path).effective_secret_key
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.20.0.5", "giaoban.example.gov.vn"])
def test_the_demo_refuses_a_network_address_unless_told(host: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettings, match="GIAOBAN_DEMO_PUBLIC=1"):
        load_settings(demo=True, host=host, var_dir=tmp_path).check_safe()
    load_settings(demo=True, host=host, demo_public=True, var_dir=tmp_path).check_safe()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_demo_listens_on_loopback_without_being_told(host: str, tmp_path: Path) -> None:
    load_settings(demo=True, host=host, var_dir=tmp_path).check_safe()


def test_serve_refuses_a_public_demo_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("GIAOBAN_DEMO", "1")
    monkeypatch.setenv("GIAOBAN_HOST", "0.0.0.0")
    monkeypatch.setenv("GIAOBAN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("GIAOBAN_DEMO_PUBLIC", raising=False)
    assert main(["serve"]) == 2
    assert "GIAOBAN_DEMO_PUBLIC=1" in capsys.readouterr().err
    assert not (tmp_path / "var").exists()  # refused before anything was made


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
