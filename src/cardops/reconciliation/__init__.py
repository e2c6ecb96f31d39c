"""Bank clearing files and reconciliation cases."""
