"""One job's encode: the pipeline, ffmpeg's argv and run, ffprobe, audio, captions, verify."""
