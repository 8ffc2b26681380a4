"""Tests of the deployment: the compose file and the production profile on real services."""
