"""quietline.reactions: what one context's events make another context do.

Bounded contexts do not call each other (import-linter keeps complaints, marks and traffic apart). When
a fact established in one must change another — a substantiated 12321 complaint, a traffic finding —
the first announces it on the change feed and a reaction here turns it into the other context's action,
run by the scheduler (``quietline worker``) from a durable feed cursor.
"""
