"""The pure, vectorised cost engine: facts + prices + a query → rows.

It reads no clock, no environment and no network; it runs DuckDB SQL over relations of facts
(`kubetally.facts.schema` defines their columns, `engine.facts.Facts` names them). Entry points:
`engine.pipeline.compute` for /v2/cost rows and `engine.usage.compute_usage` for Alauda usage rows.
"""
