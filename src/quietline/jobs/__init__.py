"""quietline.jobs: the platform's periodic jobs, run by ``quietline worker`` (and by ``quietline serve``
for the embedded install) through ``platform.scheduler``.

This package only says *what* runs and *how often*; each job is an action of its own context.
"""
