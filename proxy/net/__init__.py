"""The outlet's two transports, written once: a server that plays the outlet (used by the
simulator and replay serve) and a client link that talks to one (used by the scripted
app and replay send). Raw TCP on one port, the WebSocket on ``/ws`` on another; every
byte read goes through the core's framer, so all four see messages the same way."""
