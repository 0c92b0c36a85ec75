"""quietline.accounts: who may act, and how they prove it.

Subscribers prove a number with a one-time SMS code and get a session; enterprises are registered by
unified social credit code (GB 32100-2015); enterprise, carrier, regulator and operator users hold
scoped API keys. Public modules: ``model`` (pure rules), ``actions`` (the only writes), ``queries``
(reads other packages use, e.g. ``queries.get_enterprise``). ``orm`` is internal.
"""
