"""Meeting rooms: who may join an occurrence's room and when, and the WebSocket signalling that
connects browsers to the SFU (``media``). The protocol is in docs/signalling.md."""
