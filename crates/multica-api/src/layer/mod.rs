//! Layers: wrappers that take any `DaemonApi` and are one (work in progress).
