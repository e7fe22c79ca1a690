"""Hidden-state features and the correctness probe (arc 3, falsify, `dispo probe`)."""
