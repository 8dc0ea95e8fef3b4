//! Live output: forwards an agent's messages to the server in batches
//! (work in progress).
