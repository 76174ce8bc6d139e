# The attack suites of issue 12 (also part of `make test`): the forged-token
# catalogue, Hypothesis fuzzing of the handshake and of every message, the chaos
# run, rate-limit bursts across a minute boundary, the log-privacy grep and the
# gateway's own attacks (marker `attack`), then each defect's reproduction and the
# DynamoDB fault matrix (tests/functional/test_attacks.py, test_faults.py). Each records tried / refused / wrongly accepted / server
# errors in build/attack-figures.json. docs/attack-suites.md says more.
#   ATTACK_FUZZ_EXAMPLES=1000 make test-attack   fuzz harder (default 300 per test)
#   ATTACK_CHAOS_SECONDS=120 make test-attack    a longer chaos run (default 40)

.PHONY: test-attack

ATTACK_REPRODUCTIONS := tests/functional/test_attacks.py tests/functional/test_faults.py

test-attack: $(STAMP) ## Run the attack suites and the fault matrix (about 5 min); figures in build/attack-figures.json
	$(PY) -m pytest -m attack $(PYTEST_ARGS)
	$(PY) -m pytest $(ATTACK_REPRODUCTIONS) $(PYTEST_ARGS)
	@cat build/attack-figures.json
