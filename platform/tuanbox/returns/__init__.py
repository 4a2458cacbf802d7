"""Returns: 7-day no-reason returns for returnable products, through locker or courier."""
