"""Risk rules, scenarios, alerts, merchant ratings."""
