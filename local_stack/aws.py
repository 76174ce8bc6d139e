"""The app's tables on the local stack's AWS endpoint.

The endpoint is an embedded moto server (:mod:`local_stack.moto_server`) or
``AWS_ENDPOINT_URL``. Clients are plain boto3 clients configured by the
environment, exactly as the app's own clients are, so pointing the stack at
LocalStack instead of moto is only a matter of that variable.
"""
from __future__ import annotations

import importlib
import logging
from typing import List, Mapping, Optional

log = logging.getLogger("local_stack.aws")


def create_tables(environ: Mapping[str, str], schema_module: str = "chalicelib.state.schema",
                  config_module: str = "chalicelib.config") -> Optional[List[str]]:
    """Create the app's tables where missing, from the app's own schema.

    Uses ``chalicelib.state.schema.ensure_tables(dynamodb_client, config)``: the one
    definition of the key schemas. Returns None when the app has no schema
    module (a fixture app, say).
    """
    try:
        schema = importlib.import_module(schema_module)
    except ModuleNotFoundError as exc:
        if exc.name and schema_module.startswith(exc.name):
            log.info("no %s: not creating tables", schema_module)
            return None
        raise
    import boto3

    config_cls = importlib.import_module(config_module).Config
    config = config_cls.from_environ(dict(environ))
    client = boto3.session.Session().client("dynamodb")
    created = schema.ensure_tables(client, config)
    return list(created) if created else []
