"""Business days, merchant settlement, profit sharing."""
