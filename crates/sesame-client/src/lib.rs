//! The Sesame client library: talks to a Sesame server over HTTP and WebSocket.
#![forbid(unsafe_code)]
