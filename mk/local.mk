# Local stack: the app behind a local API Gateway WebSocket emulator, an AWS
# endpoint (embedded moto unless AWS_ENDPOINT_URL is set) and a local token
# issuer. Every variable given to `make run` reaches the app, e.g.
#   MAX_LISTENERS_PER_SESSION=3 make run
# HOST/PORT move the gateway (default 127.0.0.1:8000), MOTO_PORT the embedded
# moto (default 4566); `$(PY) -m local_stack run --help` lists the rest.

.PHONY: run token speak listen

# The WebSocket URL the clients use (the gateway's default address).
WS_URL ?= ws://$(or $(HOST),127.0.0.1):$(or $(PORT),8000)/dev
# USER and LANG are also login/locale variables: a locale (en_US.UTF-8) is not
# a language code, so only a value given for this purpose counts.
TOKEN_USER := $(or $(USER),alice)
LISTEN_LANG := $(if $(findstring .,$(LANG))$(findstring _,$(LANG)),,$(LANG))

# The sweep runs every minute in AWS; locally every few seconds, so timeouts and
# notices show up while you watch. GATEWAY_SCHEDULE_PERIOD_SECONDS overrides it.
run: export GATEWAY_SCHEDULE_PERIOD_SECONDS ?= 5
run: $(STAMP) ## Run the app locally: gateway on ws://127.0.0.1:8000, moto, tables (Ctrl-C stops)
	@exec $(PY) -m local_stack run

token: $(STAMP) ## Print a speaker token for USER=alice (the token alone on the last line)
	@$(PY) -m local_stack token $(TOKEN_USER)

# `speak` reads commands while it runs: pause, resume, mute, unmute, volume 0.5,
# status, audio FILE, tone [SECONDS], end, help (`$(PY) -m broadcast_client --help`).
# Without TOKEN, speak mints its tokens itself (--token-command), a fresh one for
# every refresh and reconnect: local tokens expire after an hour, as Cognito's do.
speak: $(STAMP) ## Create a session (TOKEN=..., else fresh tokens for USER; SOURCE=en; PORT= or WS_URL= to reach the stack); type help
	@$(if $(TOKEN),BROADCAST_TOKEN="$(TOKEN)" exec $(PY) -m broadcast_client --url $(WS_URL) speak,BROADCAST_TOKEN= exec $(PY) -m broadcast_client --url $(WS_URL) speak --token-command '$(PY) -m local_stack token $(TOKEN_USER)') $(if $(SOURCE),--source-language $(SOURCE))

# `listen` prints controls, status and audio chunks; it reads status, language CODE,
# leave; `$(PY) -m broadcast_client listen ID LANG --audio-out FILE --audio-hold 5` saves
# the audio (--audio-hold: seconds a chunk waits for an earlier one; default 0.3).
listen: $(STAMP) ## Join SESSION=<id> in LANG=<language> and print what arrives (PORT= or WS_URL= to reach the stack)
	@test -n "$(SESSION)" -a -n "$(LISTEN_LANG)" || { echo "usage: make listen SESSION=<session id> LANG=<language code, e.g. es>" >&2; exit 2; }
	@exec $(PY) -m broadcast_client --url $(WS_URL) listen $(SESSION) $(LISTEN_LANG)
