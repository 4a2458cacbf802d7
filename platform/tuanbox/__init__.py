"""Tuanbox platform: group-buy, orders, payments, fulfilment and their web pages."""
