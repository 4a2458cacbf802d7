"""Shoppers' reviews of what they picked up: one per order, a merchant reply to follow."""
