"""Pre-sale (预售): demand totals per SKU and lot at campaign close, as a purchase order."""
