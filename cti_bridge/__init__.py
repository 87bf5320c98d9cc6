"""Telephony bridge: recognise the caller and open the citizen's file on the clerk's desktop."""
