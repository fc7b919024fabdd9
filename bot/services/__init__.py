"""Services between the SIP endpoint and the commands: registrar, registration, IM."""
