import json

import pytest

from chalicelib import errors
from chalicelib.wire.intents import (
    CreateIntent,
    JoinIntent,
    RefreshIntent,
    needs_speaker_token,
    parse_connect,
    parse_message,
)

LANGS = ("en", "es", "fr")
SID = "faithful-shepherd-427"


class TestParseConnect:
    def test_create(self):
        """createSession yields the source language and the default tier."""
        assert parse_connect({"action": "createSession", "sourceLanguage": "en"}, LANGS) == CreateIntent("en", "standard")
        assert parse_connect(
            {"action": "createSession", "sourceLanguage": "es", "qualityTier": "premium"}, LANGS
        ) == CreateIntent("es", "premium")

    def test_join_with_and_without_action(self):
        """joinSession may omit the action when sessionId and targetLanguage are present."""
        expected = JoinIntent(SID, "es")
        assert parse_connect({"action": "joinSession", "sessionId": SID, "targetLanguage": "es"}, LANGS) == expected
        assert parse_connect({"sessionId": SID, "targetLanguage": "es", "token": "x"}, LANGS) == expected

    def test_refresh(self):
        """refreshConnection carries the role, and listeners their language."""
        assert parse_connect({"action": "refreshConnection", "sessionId": SID, "role": "speaker"}, LANGS) == RefreshIntent(SID, "speaker")
        assert parse_connect(
            {"action": "refreshConnection", "sessionId": SID, "role": "listener", "targetLanguage": "fr"}, LANGS
        ) == RefreshIntent(SID, "listener", "fr")

    @pytest.mark.parametrize(
        "query,error",
        [
            ({}, errors.MissingParameter),
            ({"action": "dance"}, errors.InvalidAction),
            ({"action": "createSession"}, errors.MissingParameter),
            ({"action": "createSession", "sourceLanguage": "english"}, errors.InvalidLanguage),
            ({"action": "createSession", "sourceLanguage": "EN"}, errors.InvalidLanguage),
            ({"action": "createSession", "sourceLanguage": "xx"}, errors.UnsupportedLanguage),
            ({"action": "createSession", "sourceLanguage": "en", "qualityTier": "gold"}, errors.InvalidQualityTier),
            ({"action": "joinSession", "targetLanguage": "es"}, errors.MissingParameter),
            ({"action": "joinSession", "sessionId": "nope", "targetLanguage": "es"}, errors.InvalidSessionId),
            ({"action": "joinSession", "sessionId": SID}, errors.MissingParameter),
            ({"action": "joinSession", "sessionId": SID, "targetLanguage": "de"}, errors.UnsupportedLanguage),
            ({"action": "refreshConnection", "sessionId": SID}, errors.MissingParameter),
            ({"action": "refreshConnection", "sessionId": SID, "role": "admin"}, errors.InvalidParameter),
            ({"action": "refreshConnection", "sessionId": SID, "role": "listener"}, errors.MissingParameter),
        ],
    )
    def test_refusals_carry_codes_and_400(self, query, error):
        """Every malformed query is refused with its own code and status 400."""
        with pytest.raises(error) as caught:
            parse_connect(query, LANGS)
        assert caught.value.status == 400
        assert caught.value.code == error.code

    def test_token_needed_only_for_speaker_intents(self):
        """The authorizer demands a token for create and speaker refresh only."""
        assert needs_speaker_token({"action": "createSession"})
        assert needs_speaker_token({"action": "refreshConnection", "role": "speaker"})
        assert not needs_speaker_token({"action": "refreshConnection", "role": "listener"})
        assert not needs_speaker_token({"sessionId": SID, "targetLanguage": "es"})
        assert not needs_speaker_token({})


class TestParseMessage:
    def test_valid(self):
        """A JSON object with a string action parses."""
        message = parse_message(json.dumps({"action": "heartbeat", "x": 1}))
        assert message.action == "heartbeat" and message.body["x"] == 1

    @pytest.mark.parametrize(
        "raw",
        [None, "", "not json", "[1,2]", '"heartbeat"', "{}", '{"action": 5}', '{"action": ""}', "x" * (128 * 1024 + 1)],
    )
    def test_malformed_is_invalid_message(self, raw):
        """Anything but a JSON object with a non-empty string action is INVALID_MESSAGE."""
        with pytest.raises(errors.InvalidMessage):
            parse_message(raw)
