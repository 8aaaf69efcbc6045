"""The conformance suite that every metric of the library registers with."""
