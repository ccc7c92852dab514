"""The campaign dialer: claims due call attempts from the store and places them (scheduler.py), paced by
a token bucket the store keeps per campaign (models/pacing.py); answering machines are detected on the SIP leg (dialer/sip/amd.py)."""
