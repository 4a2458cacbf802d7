"""Provenance: EPCIS events, event hashing, Merkle batches, chain anchoring and verification."""
