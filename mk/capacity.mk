# Capacity model and simulation (docs/scaling.md).
#   make capacity SESSIONS=10000 LISTENERS=100 LANGUAGES=5 [AUDIO_SINK=relay ...]
#                           measures every event on the real handlers (in-process moto,
#                           a few seconds), then prints load, cost and quota use per AWS
#                           service for the profile; MARKDOWN=1 prints Markdown tables,
#                           CAPACITY_JSON=FILE also writes everything
#   make capacity-simulate  the real sweep and fan-out against a moto server with
#                           SIM_SESSIONS (1000) sessions of SIM_LISTENERS (3) listeners
#                           and one fan-out to SIM_FANOUT (500) listeners (about a minute)
# Every profile field has a make variable of its name in capitals (SESSION_MINUTES,
# HEARTBEAT_SECONDS, AUDIO_CHUNKS_PER_SECOND, ...): `$(PY) tools/capacity.py --help`.

.PHONY: capacity capacity-simulate

CAPACITY_VARIABLES := SESSIONS LISTENERS LANGUAGES SESSION_MINUTES HEARTBEAT_SECONDS \
  REFRESH_MINUTES CHURN_PER_MINUTE AUDIO_SINK AUDIO_CHUNKS_PER_SECOND AUDIO_CHUNK_BYTES \
  TRANSLATIONS_PER_SECOND TRANSLATION_BYTES CONTROLS_PER_HOUR SWEEP_SECONDS SWEEP_SHARDS \
  SWEEP_CONCURRENCY PUBLISH_CONCURRENCY MEMORY_MB START_WINDOW_MINUTES
# Only variables given on the command line or in make's environment become flags.
CAPACITY_SET = $(foreach v,$(CAPACITY_VARIABLES),$(if $(filter command line environment,$(origin $(v))),$(v)=$($(v))))

capacity: $(STAMP) ## Capacity model: make capacity SESSIONS=10000 LISTENERS=100 LANGUAGES=5 (docs/scaling.md)
	@$(PY) tools/capacity.py $(CAPACITY_SET) $(if $(filter 1 yes true,$(MARKDOWN)),--markdown) \
	  $(if $(CAPACITY_JSON),--json $(CAPACITY_JSON))

capacity-simulate: $(STAMP) ## The real sweep and fan-out against moto with SIM_SESSIONS (1000) sessions (about a minute)
	@$(PY) tools/capacity.py simulate $(if $(SIM_SESSIONS),--sessions $(SIM_SESSIONS)) \
	  $(if $(SIM_LISTENERS),--listeners $(SIM_LISTENERS)) $(if $(SIM_FANOUT),--fanout $(SIM_FANOUT)) \
	  --json build/capacity/simulate.json
