"""The portal (门户): server-rendered pages for department staff, approvers, auditors and the
public, on the access API's app under ``/portal`` (docs/portal.md)."""
