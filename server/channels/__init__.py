"""The endpoints a call or an applicant comes in through: the web channel (/join), Twilio's webhooks and
media stream, and a campaign's shared link (/apply). Imports only the core of `server` (ARCHITECTURE.md)."""
