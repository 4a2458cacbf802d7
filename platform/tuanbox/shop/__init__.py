"""Shopper pages: server-rendered Jinja2, one base template, one stylesheet, Babel catalogs."""
