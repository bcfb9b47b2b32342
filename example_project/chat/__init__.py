"""The example project's chat demo: rooms, acknowledged messages and typing notices on "/chat"."""
