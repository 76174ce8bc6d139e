import random
import re

import pytest

from chalicelib.wire import ids, words


class TestVocabulary:
    def test_lists_are_large_unique_and_lower_case(self):
        """At least 100 adjectives and 100 nouns, each a unique lower-case word."""
        for vocabulary in (words.ADJECTIVES, words.NOUNS):
            assert len(vocabulary) >= 100
            assert len(set(vocabulary)) == len(vocabulary)
            assert all(re.fullmatch(r"[a-z]+", w) for w in vocabulary)

    def test_no_blocked_word_is_listed(self):
        """The blocklist and the lists never overlap."""
        assert not words.BLOCKED_WORDS & (set(words.ADJECTIVES) | set(words.NOUNS))


class TestGeneration:
    def test_generated_ids_have_the_documented_shape(self):
        """Every generated id is adjective-noun-NNN with NNN in 100..999 and validates."""
        rng = random.Random(7)
        for _ in range(2000):
            session_id = ids.generate_session_id(rng)
            adjective, noun, number = session_id.split("-")
            assert adjective in words.ADJECTIVES and noun in words.NOUNS
            assert 100 <= int(number) <= 999
            assert ids.is_valid_session_id(session_id)

    def test_blocked_pairs_are_never_generated(self, monkeypatch):
        """A blocked pairing is skipped at generation."""
        monkeypatch.setattr(words, "BLOCKED_PAIRS", frozenset({("faithful", "shepherd")}))

        class Scripted(random.Random):
            picks = iter(["faithful", "shepherd", "faithful", "temple"])

            def choice(self, seq):
                return next(self.picks)

        assert ids.generate_session_id(Scripted()).startswith("faithful-temple-")

    def test_candidates_are_at_most_ten_and_distinct(self):
        """The claim loop gets at most 10 distinct candidates."""
        candidates = list(ids.candidate_ids(random.Random(1)))
        assert len(candidates) == ids.MAX_ID_ATTEMPTS == 10
        assert len(set(candidates)) == 10


class TestValidation:
    @pytest.mark.parametrize(
        "value",
        [
            "faithful-shepherd-427",
            "blessed-covenant-100",
            "gracious-temple-999",
        ],
    )
    def test_accepts_listed_words_and_numbers(self, value):
        """Ids made of listed words and a number 100-999 are valid."""
        assert ids.is_valid_session_id(value)

    @pytest.mark.parametrize(
        "value",
        [
            "faithful-shepherd-99",
            "faithful-shepherd-1000",
            "faithful-shepherd-042",
            "Faithful-shepherd-427",
            "faithful-shepherd-427 ",
            "faithful_shepherd_427",
            "unknown-shepherd-427",
            "faithful-unknown-427",
            "shepherd-faithful-427",
            "faithful-shepherd",
            "",
            None,
            427,
            "faithful-shepherd-427-1",
        ],
    )
    def test_rejects_anything_else(self, value):
        """Wrong case, order, words, number range or shape is invalid."""
        assert not ids.is_valid_session_id(value)
