"""Audio inputs: onsets for keyframe timing, loudness for pacing, and muxing into MP4s."""
