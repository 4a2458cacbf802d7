"""Risk control: signals per sign-in, order, join and payment; scored rules; a review queue."""
