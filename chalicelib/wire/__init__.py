"""The contract with clients, pure: what they send (intents, messages), what they
get (server messages, ``$connect`` responses), and the API Gateway events that carry
both. Nothing here does I/O."""
