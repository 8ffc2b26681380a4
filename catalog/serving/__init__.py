"""The serving store (共享库): one indexed table per dataset, its PostgreSQL bulk loader, the fast reads."""
