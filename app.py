"""Broadcast sessions over API Gateway WebSockets.

Wiring only: each handler reads its event and calls one method in chalicelib.
Configuration is read and validated here, once, at cold start.

Where is a message handled? ``$default`` goes to ``chalicelib/router.py``, whose
action table names the handler of every action.

Every Lambda function imports this module, so it imports only what all of them
need; each handler imports its own part of chalicelib on first call (a cold start
of the authorizer never loads the store, one of ``deliver_welcome`` never loads
the router).
"""

from chalice import Chalice, Response

from chalicelib.runtime import Runtime
from chalicelib.wire.events import (
    authorizer_refusal,
    authorizer_user_id,
    endpoint_for,
    query_parameters,
    source_ip,
)

app = Chalice(app_name="broadcast")
app.experimental_feature_flags.update(["WEBSOCKETS"])

runtime = Runtime.from_environ()
app.log.setLevel(runtime.config.log_level)


@app.middleware("all")
def observe(event, get_response):
    """Every invocation: its log context and metrics, flushed as one EMF line at the end."""
    return runtime.telemetry.middleware(event, get_response)


@app.lambda_function(name="authorizer")
def authorizer(event, context):
    """REQUEST authorizer for $connect (API Gateway passes no identity sources)."""
    from chalicelib.auth.authorizer import authorize

    return authorize(event, runtime.verifier)


@app.on_ws_connect()
def on_ws_connect(event):
    from chalicelib.admission import ConnectRequest

    raw = event.to_dict()
    request = ConnectRequest(
        connection_id=event.connection_id,
        query=query_parameters(raw),
        endpoint=endpoint_for(raw, runtime.config),
        user_id=authorizer_user_id(raw),
        token_refusal=authorizer_refusal(raw),
        source_ip=source_ip(raw),
    )
    return runtime.admission.on_connect(request)


@app.lambda_function(name="deliver_welcome")
def deliver_welcome(event, context):
    """Invoked asynchronously by $connect: sends the connection's first message."""
    from chalicelib.admission import Welcome

    return {"delivered": runtime.admission.deliver_welcome(Welcome.from_payload(event))}


@app.lambda_function(name="publish")
def publish(event, context):
    """Fan-out for other services: {sessionId, targetLanguage?, type?, data}."""
    return runtime.publisher.publish_request(
        event, runtime.configured_connections_api("publish")
    )


@app.on_ws_message()
def on_ws_message(event):
    runtime.router.handle_message(
        event.connection_id, event.body, endpoint_for(event.to_dict(), runtime.config)
    )


@app.on_ws_disconnect()
def on_ws_disconnect(event):
    runtime.departures.disconnect(
        event.connection_id,
        runtime.connections_api(endpoint_for(event.to_dict(), runtime.config)),
    )


@app.route("/health", methods=["GET"])
def health():
    """For uptime monitors: 200 when every table answers, else 503 (its own HTTP API)."""
    status, body = runtime.health.check()
    return Response(body=body, status_code=status,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store"})


@app.schedule("rate(1 minute)", name="sweep")
def sweep(event):
    """Starts one sweep_shard invocation per shard of the sweep index."""
    return runtime.sweeper.dispatch(runtime.dispatch_sweep)


@app.lambda_function(name="sweep_shard")
def sweep_shard(event, context):
    """Heals one shard's sessions: timeouts, one-time notices, expired, orphaned
    and ended-but-unreleased sessions."""
    return runtime.sweeper.sweep_shard(
        int(event["shard"]), lambda: context.get_remaining_time_in_millis() / 1000
    ).to_dict()
