"""The Twilio channel: numbers bought from Twilio instead of a SIP trunk. calls.py places and ends calls
through Twilio's REST API with TwiML that connects a bidirectional Media Stream back to the server;
media_streams.py is the stream's JSON wire format; leg.py is a Leg over that websocket; status.py maps
Twilio's call statuses onto the interview lifecycle; settings_check.py validates the settings at start-up.
The server side (status callbacks, the websocket) is server/channels/twilio_endpoints.py."""
