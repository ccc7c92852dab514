"""Settings: TOML, then environment; every bad key or value stops start-up with a message naming it."""
from __future__ import annotations

import pytest

from config.settings import SettingsError, load_settings


def test_defaults_file_and_environment_layering(tmp_path) -> None:
    path = tmp_path / "phonescreen.toml"
    path.write_text('[server]\nport = 9001\nhost = "0.0.0.0"\n[webhooks]\nbackoff_base_s = 3\n')
    settings = load_settings(path, env={"PHONESCREEN_SERVER_PORT": "9002", "PHONESCREEN_LOG_FORMAT": "text"})
    assert settings.server.port == 9002 and settings.server.host == "0.0.0.0"
    assert settings.webhooks.backoff_base_s == 3.0 and isinstance(settings.webhooks.backoff_base_s, float)
    assert settings.log.format == "text" and settings.source == str(path)
    assert load_settings(None, env={}).server.port == 8080


@pytest.mark.parametrize("toml, words", [
    ('[server]\nprot = 1\n', ["server.prot", "'prot'", "phonescreen.toml"]),
    ('[sever]\nport = 1\n', ["[sever]", "phonescreen.toml"]),
    ('[server]\nport = "eighty"\n', ["server.port", "'eighty'", "int"]),
    ('[server]\nport = 70000\n', ["server.port", "70000", "range"]),
    ('[log]\nformat = "xml"\n', ["log.format", "'xml'"]),
    ('[server\nport = 1\n', ["invalid TOML", "phonescreen.toml"]),
    ('[server]\nport = true\n', ["server.port", "True"]),
])
def test_bad_file_names_key_value_and_file(tmp_path, toml: str, words: list[str]) -> None:
    path = tmp_path / "phonescreen.toml"
    path.write_text(toml)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("env, words", [
    ({"PHONESCREEN_SERVER_PROT": "1"}, ["PHONESCREEN_SERVER_PROT", "'prot'"]),
    ({"PHONESCREEN_NOPE": "1"}, ["PHONESCREEN_NOPE"]),
    ({"PHONESCREEN_SERVER_PORT": "x"}, ["PHONESCREEN_SERVER_PORT", "'x'"]),
])
def test_bad_environment_names_the_variable(env: dict[str, str], words: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, env=env)
    for word in words:
        assert word in str(caught.value)


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "absent.toml", env={})
