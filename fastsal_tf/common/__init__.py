"""Plumbing shared by the library and the programs: atomic file writes (`files`) and keeping C++ log
lines off stderr (`console`)."""
