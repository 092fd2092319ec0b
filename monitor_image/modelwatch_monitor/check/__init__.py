"""Checks: drift tests, verdicts, data quality, performance and its estimation, reports."""
