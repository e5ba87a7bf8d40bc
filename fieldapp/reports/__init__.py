"""Reporting up the chain: daily and zero reports, the roll-call of sites, QR posters."""
