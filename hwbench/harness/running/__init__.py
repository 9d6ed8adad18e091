"""Running a benchmark: worker processes, timing, what the machine was doing."""
