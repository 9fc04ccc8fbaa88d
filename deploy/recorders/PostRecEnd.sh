#!/bin/sh
# EDCB (work-plus-s) on Linux: put this file in the EDCB folder as PostRecEnd.sh
# (chmod 755). EpgTimerSrv runs it after every recording with the macros as environment
# variables (FilePath, Title, ServiceName, StartTime, DurationSecond, Drops, Scrambles,
# Result, ...); kamado reads them itself. A Result other than 録画終了 flags the job.
# It can also serve as a reservation's post-recording batch.
exec /opt/kamado/venv/bin/kamado hook edcb --config /etc/kamado/kamado.toml
