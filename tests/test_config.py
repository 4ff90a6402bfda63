"""Settings: defaults < TOML file < environment < overrides, and errors that name key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from jacmon import config as config_module
from jacmon.config import DEFAULT_PORT, Settings, load_settings, read_config_file
from jacmon.errors import ConfigError


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    """Point the default config path at a file that does not exist, whatever the user has."""
    missing = tmp_path / "no-such-dir" / "config.toml"
    monkeypatch.setattr(config_module, "default_config_path", lambda: missing)


def write(tmp_path: Path, text: str, name: str = "jacmon.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_file_or_env():
    settings = load_settings(env={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == DEFAULT_PORT == 8765
    assert settings.server.insecure is False
    assert settings.server.tls_cert is None
    assert settings.client.server == "ws://127.0.0.1:8765"
    assert settings.client.token is None
    assert settings.tasks == {}
    assert settings.lrs == {}
    assert settings.source is None


def test_file_overrides_defaults_with_coercion(tmp_path):
    path = write(
        tmp_path,
        """
        [server]
        host = "0.0.0.0"
        port = 9001
        insecure = true
        metrics_interval_s = 5
        db = "~/data/j.db"
        tls_cert = "/etc/cert.pem"

        [client]
        token = "jm_abc_def"
        """,
    )
    settings = load_settings(path, env={})
    assert settings.source == path
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 9001
    assert settings.server.insecure is True
    # A TOML integer for a float setting becomes a float.
    assert settings.server.metrics_interval_s == 5.0
    assert isinstance(settings.server.metrics_interval_s, float)
    assert settings.server.db == Path("~/data/j.db").expanduser()
    assert settings.server.tls_cert == Path("/etc/cert.pem")
    assert settings.client.token == "jm_abc_def"
    # Untouched keys keep their defaults.
    assert settings.server.replay_window == 100_000


def test_precedence_default_file_env_override(tmp_path):
    path = write(tmp_path, "[server]\nport = 9001\nhost = '10.0.0.1'\nlog_level = 'debug'\n")
    file_only = load_settings(path, env={})
    assert (file_only.server.port, file_only.server.host) == (9001, "10.0.0.1")

    env = {"JACMON_PORT": "9002", "JACMON_SERVER__HOST": "10.0.0.2"}
    with_env = load_settings(path, env=env)
    assert with_env.server.port == 9002
    assert with_env.server.host == "10.0.0.2"
    assert with_env.server.log_level == "debug"  # from the file, env does not set it

    flags = load_settings(path, env=env, overrides={"server": {"port": 9003, "host": None}})
    assert flags.server.port == 9003
    # A None override is "flag not given": the env value stays.
    assert flags.server.host == "10.0.0.2"


def test_long_env_name_and_alias_for_same_key():
    assert load_settings(env={"JACMON_SERVER__PORT": "7000"}).server.port == 7000
    assert load_settings(env={"JACMON_PORT": "7001"}).server.port == 7001


@pytest.mark.parametrize(
    ("var", "value", "section", "key", "expected"),
    [
        ("JACMON_HOST", "::1", "server", "host", "::1"),
        ("JACMON_DB", "/tmp/x.db", "server", "db", Path("/tmp/x.db")),
        ("JACMON_LOG_LEVEL", "warning", "server", "log_level", "warning"),
        ("JACMON_LOG_FORMAT", "json", "server", "log_format", "json"),
        ("JACMON_SERVER", "ws://h:1", "client", "server", "ws://h:1"),
        ("JACMON_TOKEN", "jm_1_2", "client", "token", "jm_1_2"),
        ("JACMON_LEARNER", "u9", "client", "learner", "u9"),
    ],
)
def test_env_aliases(var, value, section, key, expected):
    settings = load_settings(env={var: value})
    assert getattr(getattr(settings, section), key) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("off", False)],
)
def test_env_booleans(text, expected):
    assert load_settings(env={"JACMON_SERVER__INSECURE": text}).server.insecure is expected


@pytest.mark.parametrize("text", ["", "none", "null", "None"])
def test_env_empty_or_none_clears_an_optional_setting(text):
    settings = load_settings(env={"JACMON_SERVER__TLS_CERT": text, "JACMON_TOKEN": text})
    assert settings.server.tls_cert is None
    assert settings.client.token is None


def test_env_tasks_and_lrs_keys_go_to_free_tables():
    settings = load_settings(
        env={"JACMON_TASKS__TIMEZONE": "Europe/Berlin", "JACMON_LRS__URL": "http://lrs"}
    )
    assert settings.tasks == {"timezone": "Europe/Berlin"}
    assert settings.lrs == {"url": "http://lrs"}


def test_env_variables_that_are_not_settings_are_ignored():
    # JACMON_CONFIG picks the file; other single-word names are not settings.
    settings = load_settings(env={"JACMON_SOMETHING": "x", "PATH": "/bin", "JACMON_CONFIG": ""})
    assert settings == load_settings(env={})


def test_jacmon_config_env_names_the_file(tmp_path):
    path = write(tmp_path, "[server]\nport = 9100\n")
    settings = load_settings(env={"JACMON_CONFIG": str(path)})
    assert settings.server.port == 9100
    assert settings.source == path


def test_default_config_path_is_read_when_present(tmp_path, monkeypatch):
    path = write(tmp_path, "[server]\nport = 9200\n", name="config.toml")
    monkeypatch.setattr(config_module, "default_config_path", lambda: path)
    assert load_settings(env={}).server.port == 9200


def test_free_tables_are_kept_as_given(tmp_path):
    path = write(
        tmp_path,
        """
        [tasks]
        timezone = "UTC"
        [tasks.performance]
        cron = "*/5 * * * *"
        enabled = false

        [lrs]
        url = "http://127.0.0.1:8100"
        poll_s = 2.5
        """,
    )
    settings = load_settings(path, env={})
    assert settings.tasks == {
        "timezone": "UTC",
        "performance": {"cron": "*/5 * * * *", "enabled": False},
    }
    assert settings.lrs == {"url": "http://127.0.0.1:8100", "poll_s": 2.5}


def test_overrides_for_free_tables_skip_none():
    settings = load_settings(env={}, overrides={"tasks": {"timezone": "UTC", "x": None}})
    assert settings.tasks == {"timezone": "UTC"}


# Errors


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nport = 'abc'", "Config 'server.port' has value 'abc'. Expected an integer."),
        ("[server]\nport = true", "Config 'server.port' has value True. Expected an integer."),
        ("[server]\ninsecure = 1", "Config 'server.insecure' has value 1. Expected true or false."),
        (
            "[server]\nmetrics_interval_s = 'often'",
            "Config 'server.metrics_interval_s' has value 'often'. Expected a number.",
        ),
        (
            "[server]\nmetrics_interval_s = false",
            "Config 'server.metrics_interval_s' has value False. Expected a number.",
        ),
        ("[server]\ndb = 5", "Config 'server.db' has value 5. Expected a file path."),
        ("[server]\nhost = 127", "Config 'server.host' has value 127. Expected a string."),
        ("[client]\ntoken = 42", "Config 'client.token' has value 42. Expected a string."),
    ],
)
def test_bad_file_values_name_key_value_and_expectation(tmp_path, toml, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), env={})
    assert str(caught.value) == message
    assert caught.value.exit_code == 2


def test_bad_env_value_names_the_key():
    with pytest.raises(ConfigError, match=r"Config 'server.port' has value 'eighty'"):
        load_settings(env={"JACMON_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"Config 'server.insecure' has value 'maybe'"):
        load_settings(env={"JACMON_SERVER__INSECURE": "maybe"})


def test_bad_override_value_names_the_key():
    with pytest.raises(ConfigError, match=r"Config 'server.port' has value 'x'"):
        load_settings(env={}, overrides={"server": {"port": "x"}})


def test_unknown_key_in_file_lists_known_keys(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[server]\nprot = 9000\n"), env={})
    message = str(caught.value)
    assert message.startswith("Config 'server.prot' is not a setting. Known keys in [server]: ")
    assert "port" in message
    assert "host" in message


def test_unknown_key_in_env_is_rejected():
    with pytest.raises(ConfigError, match=r"Config 'client.tokn' is not a setting"):
        load_settings(env={"JACMON_CLIENT__TOKN": "x"})


def test_unknown_table_is_rejected(tmp_path):
    path = write(tmp_path, "[servre]\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"Config file {path} has an unknown table [servre]. "
        "Known: [server], [client], [web], [tasks], [lrs], [notify]."
    )


@pytest.mark.parametrize("name", ["server", "client", "tasks", "lrs"])
def test_section_that_is_not_a_table_is_rejected(tmp_path, name):
    with pytest.raises(ConfigError, match=rf"Config '{name}' must be a table \(\[{name}\]\)"):
        load_settings(write(tmp_path, f"{name} = 3\n"), env={})


def test_missing_file_says_check_the_path(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"Config file {path} does not exist; check the --config path."


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError, match=r"is not valid TOML") as caught:
        read_config_file(path)
    assert str(path) in str(caught.value)


def test_settings_instances_do_not_share_state():
    first, second = Settings(), Settings()
    first.tasks["x"] = 1
    first.server.port = 1
    assert second.tasks == {}
    assert second.server.port == DEFAULT_PORT


def test_float_for_an_integer_setting_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"Config 'server.port' has value 80.9"):
        load_settings(write(tmp_path, "[server]\nport = 80.9\n"), env={})


# [web]


def test_web_defaults_serve_the_pages_framed_only_by_this_origin():
    settings = load_settings(env={})
    assert settings.web.enabled is True
    assert settings.web.frame_ancestors == ["'self'"]


def test_web_settings_from_file_and_environment(tmp_path):
    path = write(
        tmp_path,
        '[web]\nenabled = false\nframe_ancestors = ["\'self\'", "https://lms.example.com"]\n',
    )
    from_file = load_settings(path, env={})
    assert from_file.web.enabled is False
    assert from_file.web.frame_ancestors == ["'self'", "https://lms.example.com"]
    from_env = load_settings(
        env={"JACMON_WEB__FRAME_ANCESTORS": "https://*.example.com,http://10.0.0.5:8080"}
    )
    assert from_env.web.frame_ancestors == ["https://*.example.com", "http://10.0.0.5:8080"]


@pytest.mark.parametrize(
    "good", ["'none'", "https://lms.example.com:8443", "http://[::1]:9000", "https://*.edu.example"]
)
def test_frame_ancestors_accepts_self_none_and_origins(good):
    assert load_settings(env={"JACMON_WEB__FRAME_ANCESTORS": good}).web.frame_ancestors == [good]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("self", "(with the single quotes: \"'self'\")"),
        ("*", "Expected \"'self'\", \"'none'\" or an origin"),
        ("https://lms.example.com/course", "no path"),
        ("ftp://files.example.com", "Expected \"'self'\""),
        ("https://a.example.com; script-src *", "Expected \"'self'\""),
        ("'unsafe-inline'", "Expected \"'self'\""),
    ],
)
def test_bad_frame_ancestors_name_the_key_and_the_value(bad, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(env={}, overrides={"web": {"frame_ancestors": [bad]}})
    message = str(caught.value)
    assert message.startswith(f"Config 'web.frame_ancestors' has value {bad!r}. ")
    assert expected in message
    assert caught.value.exit_code == 2


def test_none_must_be_the_only_frame_ancestor():
    with pytest.raises(ConfigError, match=r"\"'none'\" must be the only entry"):
        load_settings(env={"JACMON_WEB__FRAME_ANCESTORS": "'none','self'"})


def test_empty_frame_ancestors_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"Config 'web.frame_ancestors' is empty"):
        load_settings(write(tmp_path, "[web]\nframe_ancestors = []\n"), env={})


def test_bad_web_enabled_names_the_key():
    with pytest.raises(ConfigError, match=r"Config 'web.enabled' has value 'sometimes'"):
        load_settings(env={"JACMON_WEB__ENABLED": "sometimes"})
