"""A/B experiments on a campaign's title, image or price: assignment, exposure, results."""
