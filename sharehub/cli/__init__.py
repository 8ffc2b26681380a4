"""The ``sharehub`` command line: ``main`` holds the app and the core commands, one module per group."""
