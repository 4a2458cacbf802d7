"""A/B experiments on a campaign's title or image: assignment, exposure, conversion, results."""
