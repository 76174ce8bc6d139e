"""A local stand-in for the AWS side of a Chalice WebSocket app.

Pieces, each usable alone:

- :mod:`local_stack.apigw`: sans-I/O emulation of API Gateway's WebSocket
  behaviour: ``events`` (event shapes), ``decisions`` (routes, authorizer
  policies, ``$connect`` answers), ``connection`` (connection state and limits).
- :mod:`local_stack.lambda_runtime`: loads a Chalice app and invokes its
  functions the way Lambda does, by handler string.
- :mod:`local_stack.gateway`: the aiohttp server (WebSocket endpoint,
  ``@connections`` management API, Lambda Invoke API, JWKS).
- :mod:`local_stack.schedule`: ``rate(...)`` schedules.
- :mod:`local_stack.issuer`: a local stand-in for a Cognito user pool.
- :mod:`local_stack.aws`: the embedded moto endpoint and table bootstrap.
- :mod:`local_stack.runner`: ``python -m local_stack run`` / ``token``.

None of it ships in the Lambda zip; the app needs nothing from it.
"""
