"""Prolific in the loop: its API (client), reconciling a study with its submissions (sync),
reviewing submissions from our data (review), and the record of both in the database (records)."""
