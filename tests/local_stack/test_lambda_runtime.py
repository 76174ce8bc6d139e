"""Loading a Chalice app and invoking its functions by handler string."""
from pathlib import Path

import pytest

from local_stack.lambda_runtime import FunctionError, FunctionNotFound, LambdaApp
from local_stack.schedule import scheduled_event

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def lambda_app():
    app = LambdaApp.load(str(HERE / "fixture_app.py"), HERE, stage="dev", region="us-east-1",
                         account_id="123456789012", max_workers=2)
    yield app
    app.shutdown()


class TestRegistry:
    def test_functions_come_from_the_chalice_registrations(self, lambda_app):
        """Routes, @app.lambda_function and @app.schedule functions are all known."""
        assert lambda_app.routes == {"$connect": "websocket_connect", "$default": "websocket_message",
                                     "$disconnect": "websocket_disconnect"}
        assert {"authorizer", "deliver_welcome", "echo_function", "tick"} <= set(lambda_app.functions)
        assert lambda_app.functions["authorizer"].handler_string == "app.authorizer"
        assert lambda_app.functions["tick"].schedule == "rate(1 minute)"

    @pytest.mark.parametrize("name", [
        "echo_function", "fixture-dev-echo_function", "echo_function:$LATEST",
        "arn:aws:lambda:us-east-1:123456789012:function:fixture-dev-echo_function",
    ])
    def test_names_resolve_like_lambda(self, lambda_app, name):
        """Bare Chalice names, deployed names, qualifiers and ARNs all resolve."""
        assert lambda_app.function(name).name == "echo_function"

    def test_a_cron_schedule_is_not_run_but_the_function_stays_invocable(self, tmp_path, caplog):
        """cron(...) is not emulated: the function is known (Invoke API), left out of the
        clock's schedules, and a warning says why."""
        (tmp_path / "cron_app.py").write_text(
            "from chalice import Chalice\n"
            "app = Chalice(app_name='cron')\n"
            "@app.schedule('cron(0 10 * * ? *)', name='nightly')\n"
            "def nightly(event):\n"
            "    return 'ran'\n")
        app = LambdaApp.load("cron_app.py", tmp_path, stage="dev", region="us-east-1",
                             account_id="123456789012", max_workers=1)
        try:
            assert app.function("nightly").schedule is None and app.scheduled() == []
            event = scheduled_event(rule_arn="arn:aws:events:us-east-1:123456789012:rule/r",
                                    region="us-east-1", account_id="123456789012", now=0)
            assert app.invoke_sync(app.function("nightly"), event) == "ran"
        finally:
            app.shutdown()
        assert any("nightly is not scheduled locally" in r.getMessage() and "cron(0 10" in r.getMessage()
                   for r in caplog.records if r.levelname == "WARNING")

    def test_unknown_function(self, lambda_app):
        """An unknown name is FunctionNotFound (Lambda's 404)."""
        with pytest.raises(FunctionNotFound):
            lambda_app.function("fixture-prod-echo_function")


class TestInvoke:
    def test_handler_gets_json_event_and_a_lambda_context(self, lambda_app):
        """The handler sees the event and a context named like the deployed function."""
        result = lambda_app.invoke_sync(lambda_app.function("echo_function"), {"a": [1, 2]})
        assert result == {"event": {"a": [1, 2]}, "function": "fixture-dev-echo_function",
                          "remaining": True}

    def test_handler_error_carries_lambdas_payload(self, lambda_app):
        """A raising handler becomes FunctionError with errorMessage and errorType."""
        with pytest.raises(FunctionError) as info:
            lambda_app.invoke_sync(lambda_app.function("failing_function"), {})
        assert info.value.payload["errorMessage"] == "nope"
        assert info.value.payload["errorType"] == "ValueError"

    def test_websocket_handler_returns_chalices_response(self, lambda_app):
        """Chalice's WebSocket wrapper turns the handler's return into a status dict."""
        event = {"requestContext": {"apiId": "local00api", "stage": "dev", "domainName": "x",
                                    "connectionId": "c", "routeKey": "$disconnect"}}
        result = lambda_app.invoke_sync(lambda_app.route_function("$disconnect"), event)
        assert result == {"statusCode": 200}
