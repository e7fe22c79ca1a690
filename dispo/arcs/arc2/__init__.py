"""Arc 2: head attribution and tempering."""
