"""The gate: a site's page and entry form, gate entries, rosters, visitors registering
themselves, sites and their codes, the demo."""
