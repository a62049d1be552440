"""One file per daemon and area; each case is a function marked @case (portier_sip.registry)."""
