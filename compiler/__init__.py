"""Compiler: TVM import, BatchNorm folding and fusion, schedules, build."""
