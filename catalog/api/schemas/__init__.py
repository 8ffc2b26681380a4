"""Request and response bodies of the access API, one module per router.

They make the OpenAPI document complete."""
