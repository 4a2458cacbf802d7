"""Payments: the provider port, the bundled SimPay gateway, webhooks, refunds with retries."""
