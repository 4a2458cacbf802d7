"""Audit trail of every admin and ops action: who did what, to what, why and when."""
