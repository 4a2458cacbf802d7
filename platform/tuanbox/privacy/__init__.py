"""Data protection: key rotation of encrypted personal data, a shopper's export and erasure."""
