//! Payload encodings of the mode messages.
