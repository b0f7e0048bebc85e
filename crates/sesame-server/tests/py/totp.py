"""Prints the TOTP code of an otpauth:// URI at a unix time, with pyotp (an implementation
independent of the server's), the way an authenticator app reads the QR code.

usage: totp.py URI UNIX_SECONDS
"""
import sys

import pyotp

uri, at = sys.argv[1], int(sys.argv[2])
print(pyotp.parse_uri(uri).at(at))
