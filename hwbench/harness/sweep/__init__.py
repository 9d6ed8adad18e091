"""``hwbench sweep``: a grid of points, run on Ray or local processes, and its reports."""
