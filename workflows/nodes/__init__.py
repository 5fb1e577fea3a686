"""Node types: one module per type (config check, execution, output name, custom-node use), `registry` by name."""
