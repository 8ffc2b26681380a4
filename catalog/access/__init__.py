"""Who may see what: apps, staff and passwords, applications and grants, working days, purpose,
the gate every data call passes, the one disclosure projection, rate limits."""
