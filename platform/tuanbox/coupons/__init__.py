"""Coupons: templates, issuance and redemption ledgers, the discount an order gets."""
