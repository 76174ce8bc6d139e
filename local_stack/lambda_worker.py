"""One Lambda execution environment for ``make run-deployed``: a child process
that imports one function's handler from its deployed code and runs events.

Started by :mod:`local_stack.deployed` as
``python -I lambda_worker.py --code DIR --handler app.on_ws_connect --reply-fd N``
with exactly the function's environment (its deployed variables plus what the
Lambda runtime sets), so each function sees only its own configuration and keeps
module state per process, as in Lambda. ``-I`` keeps the repository off
``sys.path``: only the deployed code (``--code``, the task root) and the
interpreter's site-packages are importable.

Requests arrive as JSON lines on stdin (``{"requestId", "event", "deadline"}``);
each answer is one JSON line on the reply descriptor (``{"result": ...}`` or
``{"error": <Lambda's error payload>}``), so whatever the handler prints stays
log output, as in Lambda. Stdlib only: this file runs outside the project.
"""

import argparse
import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The context object of Python's Lambda runtime."""

    def __init__(self, request_id, deadline):
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.function_name = name
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get(
            "LOCAL_FUNCTION_ARN", f"arn:aws:lambda:{region}:123456789012:function:{name}")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}")
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + request_id.replace("-", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.time()) * 1000))


def load_handler(handler):
    """Import ``module.function`` as Lambda's Python runtime does at init.

    Returns ``(callable, None)`` or ``(None, error payload)`` with the error
    types Lambda reports (``Runtime.ImportModuleError``,
    ``Runtime.HandlerNotFound``, ``Runtime.MalformedHandlerName``).
    """
    module_name, _, attribute = handler.rpartition(".")
    if not module_name or not attribute:
        return None, {"errorType": "Runtime.MalformedHandlerName",
                      "errorMessage": f"Bad handler '{handler}': not enough values to unpack"}
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, {"errorType": "Runtime.ImportModuleError",
                      "errorMessage": f"Unable to import module '{module_name}': {exc}"}
    except Exception as exc:  # the module's own init failed (a bad configuration, say)
        return None, {"errorType": type(exc).__name__, "errorMessage": str(exc),
                      "stackTrace": traceback.format_tb(exc.__traceback__)}
    function = getattr(module, attribute, None)
    if not callable(function):
        return None, {"errorType": "Runtime.HandlerNotFound",
                      "errorMessage": f"Handler '{attribute}' missing on module '{module_name}'"}
    return function, None


def serve(handler, init_error, requests, reply):
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = request["requestId"]
        print(f"START RequestId: {request_id} Version: $LATEST", file=sys.stderr, flush=True)
        started = time.monotonic()
        if init_error is not None:
            answer = {"error": dict(init_error, requestId=request_id)}
        else:
            context = LambdaContext(request_id, request["deadline"])
            try:
                result = handler(request["event"], context)
                answer = {"result": json.loads(json.dumps(result))}
            except (TypeError, ValueError) as exc:
                answer = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                                    "requestId": request_id,
                                    "stackTrace": traceback.format_tb(exc.__traceback__)}}
            except Exception as exc:
                answer = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                                    "requestId": request_id,
                                    "stackTrace": traceback.format_tb(exc.__traceback__)}}
        sys.stdout.flush()
        print(f"END RequestId: {request_id}", file=sys.stderr)
        print(f"REPORT RequestId: {request_id}\tDuration: {(time.monotonic() - started) * 1000:.2f} ms",
              file=sys.stderr, flush=True)
        reply.write(json.dumps(answer) + "\n")
        reply.flush()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--reply-fd", type=int, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, args.code)  # the task root, first: /var/task in Lambda
    os.chdir(args.code)
    reply = os.fdopen(args.reply_fd, "w")
    handler, init_error = load_handler(args.handler)
    if init_error is not None:
        print(f"[ERROR] {init_error['errorType']}: {init_error['errorMessage']}",
              file=sys.stderr, flush=True)
    serve(handler, init_error, sys.stdin, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
