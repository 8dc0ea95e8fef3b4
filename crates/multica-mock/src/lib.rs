//! A stateful in-memory fake of the Multica server (work in progress).
