"""Door validation: paired devices, the online check-in, offline bundles and sync, /door."""
