"""Faulty-terminal repair, loaners, RMA, field service records."""
