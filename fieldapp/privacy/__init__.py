"""Privacy: retention and purge, the fields a site collects, ID numbers sealed at rest."""
