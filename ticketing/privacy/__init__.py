"""The personal-data vault: the one place that stores anything about a person."""
