"""The foundation every layer may import: errors, typed records, paths, atomic writes, registries, config, run directories."""
