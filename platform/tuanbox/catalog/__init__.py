"""Catalog: merchants and their credentials, products, SKUs with stock, lots, images."""
