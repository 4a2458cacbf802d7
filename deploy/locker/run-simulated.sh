#!/bin/sh
# A simulated locker in one container: the lock-board simulator on a pty, then the agent.
# (A pty cannot be shared across containers, so both live here; on a Pi the agent runs alone.)
set -eu
mkdir -p /run/tuanbox
python -m firmware_sim lockboard --link /run/tuanbox/lockbus --boards 1 &
exec tuanbox-edge run
