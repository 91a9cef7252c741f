"""Workers: the claim → render → store → complete loop, run in-process or on GPU nodes."""
