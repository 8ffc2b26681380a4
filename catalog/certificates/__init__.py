"""Electronic certificates (电子证照): issuing, signing (canonical JSON, RFC 8785), verifying."""
