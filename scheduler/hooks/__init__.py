"""Recorder hooks: each recorder's input, the quick path, the hook log and config cache."""
