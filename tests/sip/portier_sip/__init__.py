"""The SIP test driver's library: the toolbox (SIP messages, sipp, raw UAs, RTP
peers), the Env that starts the daemons of one case, the case registry and the
command line. The cases themselves live in ../cases/, one file per daemon and area."""
