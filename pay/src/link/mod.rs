//! The host link: mutual TLS over TCP with length-prefixed framing.
