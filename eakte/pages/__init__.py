"""Server-rendered pages for people: sign-in and the file page the desktop agent opens."""
