"""EPGStation as kamado's client: its encode preset, and outputs registered in its library."""
