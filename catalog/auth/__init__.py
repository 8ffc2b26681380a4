"""Keys and tokens: the hub's Ed25519 key sets and the EdDSA-signed access tokens."""
