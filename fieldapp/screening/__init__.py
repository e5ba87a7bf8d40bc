"""Screening (排查): everyone on every site's roster asked the campaign's questions, day by day,
counted up the chain and followed up.

questions (the fixed question set and its rules, for the phone and the instance), campaigns
(configuration flowing down), answers (the `screening` record kind), tallies (counts kept with
the answers), coverage (the table and the summary paragraph), followup (the
`screening_action` kind), views and cli.
"""
