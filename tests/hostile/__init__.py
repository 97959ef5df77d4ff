"""Hostile-input regression suite: upstreams, clients, proxies and configs that try to hurt.

Every test here plays the attacker for real on 127.0.0.1 (aiohttp upstreams that send hostile
bodies and redirects, raw-socket clients that half-send requests or flood headers), bounded in
count and time, and each one failed on the main branch before its defence was written
(docs/SECURITY.md maps every threat to its defence and its test).
"""
