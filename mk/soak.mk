# soak.mk: the long runs of issue 13, not part of `make test`.
# `make soak` churns 1,000,000 tasks through one server with retention on
# and checks that database size, memory and latency stay flat
# (bench/soak.sh); `make fault` kills the server with SIGKILL under load
# five times and checks every acknowledged write (bench/fault.sh).

.PHONY: soak fault
soak: all $(B)/loadgen
	TASKMILL_BIN=$(B)/taskmill LOADGEN_BIN=$(B)/loadgen bench/soak.sh

fault: all
	TASKMILL_BIN=$(B)/taskmill bench/fault.sh
