"""Arc 3: frozen-base probe sidecar and its falsification steps."""
