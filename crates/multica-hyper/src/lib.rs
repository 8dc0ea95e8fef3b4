//! The production Multica daemon API client on hyper 1.x (work in progress).
