"""Giao Ban's media plane (the SFU).

This package never imports ``server``, Starlette or SQLModel: the web process talks to it
through a small typed interface. The forwarding SFU itself arrives with its own issue; the
package exists now so that the one-way import rule is kept from the first commit.
"""
