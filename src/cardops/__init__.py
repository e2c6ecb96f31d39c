"""cardops: operations platform for card issuers and POS terminal operators."""

__version__ = "0.1.0"
