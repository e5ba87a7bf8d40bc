"""fieldapp: offline-first gate registration. create_app() builds every instance, any tier.

The core is here (settings, db, records, rules, days, i18n, security, jobs, commands); the
areas are packages: gate/, phones/, console/, reports/, privacy/, syncing/. The protocol they
sync with is the sibling package sync/.
"""

from fieldapp.app import create_app

__all__ = ["create_app"]
