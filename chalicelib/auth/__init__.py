"""Speaker authentication: Cognito JWT verification and the ``$connect`` authorizer."""
