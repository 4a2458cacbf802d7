"""Provenance in the platform: stored EPCIS events, anchoring windows, trace reports and pages."""
