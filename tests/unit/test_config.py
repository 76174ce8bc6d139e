import pytest

from chalicelib.config import Config, ConfigError
from chalicelib.wire.languages import DEFAULT_SUPPORTED_LANGUAGES


class TestConfig:
    def test_defaults_match_the_documentation(self):
        """With no environment, every setting has its documented default."""
        config = Config.from_environ({})
        assert config.session_max_duration_hours == 2
        assert config.max_listeners_per_session == 500
        assert config.connection_refresh_minutes == 100
        assert config.connection_warning_minutes == 105
        assert config.connection_max_duration_minutes == 120
        assert config.heartbeat_interval_seconds == 30
        assert config.heartbeat_timeout_seconds == 90
        assert config.supported_languages == DEFAULT_SUPPORTED_LANGUAGES
        assert config.sessions_table == "Sessions"
        assert config.connection_ttl_seconds == 2 * 3600 + 3600

    def test_decimals_shrink_durations(self):
        """Decimal values are accepted so tests can use seconds instead of hours."""
        config = Config.from_environ(
            {
                "SESSION_MAX_DURATION_HOURS": "0.01",
                "CONNECTION_REFRESH_MINUTES": "0.1",
                "CONNECTION_WARNING_MINUTES": "0.15",
                "CONNECTION_MAX_DURATION_MINUTES": "0.2",
            }
        )
        assert config.session_max_duration_seconds == 36
        assert config.connection_refresh_minutes == 0.1

    def test_languages_are_overridable(self):
        """SUPPORTED_LANGUAGES replaces the default set, in order, without duplicates."""
        config = Config.from_environ({"SUPPORTED_LANGUAGES": "en, es,en,fr"})
        assert config.supported_languages == ("en", "es", "fr")

    @pytest.mark.parametrize(
        "name,value",
        [
            ("MAX_LISTENERS_PER_SESSION", "many"),
            ("MAX_LISTENERS_PER_SESSION", "0"),
            ("MAX_LISTENERS_PER_SESSION", "2.5"),
            ("SESSION_MAX_DURATION_HOURS", "-1"),
            ("HEARTBEAT_TIMEOUT_SECONDS", "nan"),
            ("SUPPORTED_LANGUAGES", "english"),
            ("TOKEN_USE", "refresh"),
            ("AUDIO_SINK", "s3"),
        ],
    )
    def test_invalid_values_name_the_variable(self, name, value):
        """A malformed variable fails at cold start with its name in the message."""
        with pytest.raises(ConfigError, match=name):
            Config.from_environ({name: value})

    def test_notice_timeline_must_be_ordered(self):
        """Refresh <= warning <= max duration, or configuration fails."""
        with pytest.raises(ConfigError, match="CONNECTION_WARNING_MINUTES"):
            Config.from_environ({"CONNECTION_WARNING_MINUTES": "130"})

    def test_jwks_url_defaults_to_the_issuers(self):
        """Without JWKS_URL, keys come from the issuer's well-known JWKS."""
        config = Config.from_environ({"TOKEN_ISSUER": "https://issuer.example/pool/"})
        assert config.effective_jwks_url == "https://issuer.example/pool/.well-known/jwks.json"
        config = Config.from_environ(
            {"TOKEN_ISSUER": "https://issuer.example/pool", "JWKS_URL": "http://127.0.0.1:1/jwks"}
        )
        assert config.effective_jwks_url == "http://127.0.0.1:1/jwks"


class TestDocumentation:
    def test_readme_table_is_the_declared_settings(self):
        """The README's configuration table lists exactly the variables Config reads,
        with their declared defaults and meanings, in declaration order
        (`python tools/config_table.py --write` regenerates it)."""
        from pathlib import Path

        from chalicelib.config import variables

        readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
        rows = [f"| `{v.name}` | {v.default} | {v.doc} |" for v in variables()]
        table = "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows]) + "\n\n"
        assert table in readme

    def test_every_declared_default_parses_to_itself(self):
        """A documented default given explicitly yields the same configuration as
        leaving the variable unset (the doc and the code cannot disagree)."""
        import attrs

        from chalicelib.config import variables

        explicit = {}
        for variable, field in zip(variables(), attrs.fields(Config)):
            if field.default not in (None, "") and variable.default.startswith("`"):
                explicit[variable.name] = variable.default.split("`")[1]
        assert "SUPPORTED_LANGUAGES" in explicit and "MAX_LISTENERS_PER_SESSION" in explicit
        assert Config.from_environ(explicit) == Config.from_environ({})
