"""The machine's yardsticks: measured FMA peak and the fixed reference workload."""
