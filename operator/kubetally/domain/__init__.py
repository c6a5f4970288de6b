"""The vocabulary of kubetally: plain, pure types and parsers shared by every layer.

Nothing here reads a clock, the environment or the network, and nothing here imports the engine,
numpy or DuckDB. `now` and time zones are always parameters.
"""
