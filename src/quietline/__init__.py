"""quietline: governance of unwanted commercial calls and SMS (骚扰电话、垃圾短信治理)."""

__version__ = "0.1.0"
