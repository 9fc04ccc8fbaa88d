#!/bin/sh
# Chinachu gamma: recordedCommand takes no arguments, so point it at this script:
#   config.json:  "recordedCommand": "/usr/local/bin/kamado-chinachu-hook"
# Chinachu runs it as: <script> <recorded file> <programme JSON> (the path may be
# relative to Chinachu's directory, which is our working directory; kamado resolves it).
# Install:  install -m 755 chinachu-recorded.sh /usr/local/bin/kamado-chinachu-hook
# Chinachu never reads our output; kamado logs to <state_dir>/logs/hooks.log.
exec /opt/kamado/venv/bin/kamado hook chinachu "$1" "$2" --config /etc/kamado/kamado.toml >/dev/null 2>&1
