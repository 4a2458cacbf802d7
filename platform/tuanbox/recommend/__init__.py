"""Recommendations: item-item co-occurrence from picked-up orders, blended with popularity."""
