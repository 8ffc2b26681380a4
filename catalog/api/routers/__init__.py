"""The API's endpoints, one router per area; ``catalog.api.app`` mounts them."""
