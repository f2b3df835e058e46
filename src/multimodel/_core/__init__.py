"""The sans-I/O engine: clock, dispatch decisions (retry / fallback / back-off), deadlines."""
