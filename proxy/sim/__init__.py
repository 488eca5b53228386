"""The outlet simulator (device state and the servers that speak for it) and the scripted
app that drives a whole OTA update through the proxy."""
