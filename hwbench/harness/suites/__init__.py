"""What is measured: the kernel, model and peer suites, pytest-benchmark glue, the simulator run."""
