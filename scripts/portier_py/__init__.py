"""Python helpers shared by scripts/ (the demo), bench/ and tests/: starting
portier's programs on this machine and talking to them (daemons.py). Python 3
stdlib only."""
