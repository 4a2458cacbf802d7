"""Segments: user tags, RFM scores, named segments by rule, and targeted pushes to them."""
