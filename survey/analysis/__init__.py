"""Analysis of a study: exclusions, statistics by topic, all results in one object, the report, simulation and power."""
