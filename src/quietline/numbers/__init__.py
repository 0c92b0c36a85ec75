"""quietline.numbers: parsing and normalising Chinese phone numbers, the number plan, carriers and
number portability (携号转网).

Public interface: ``parse``, ``parse_prefix``, ``PhoneNumber``, ``InvalidNumber`` (here),
``quietline.numbers.queries`` (current carrier, number info) and ``quietline.numbers.actions``
(portability import).
"""

from quietline.numbers.model import InvalidNumber, PhoneNumber, parse, parse_prefix

__all__ = ["InvalidNumber", "PhoneNumber", "parse", "parse_prefix"]
