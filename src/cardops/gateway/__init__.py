"""The acquiring gateway: ISO 8583 over TCP, keys and MAC, on-us wallets, an upstream host."""
