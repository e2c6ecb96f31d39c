"""Service desk tickets, SLAs, complaints, surveys."""
