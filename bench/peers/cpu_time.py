"""Runs a peer script with time.perf_counter replaced by time.process_time, so the seconds it
prints are this process's CPU seconds. On a loaded machine, at OMP_NUM_THREADS=1, they
approximate the idle time better than the wall clock (the bench programs print cpu_ms= and
epoch_cpu_s= for the same reason).

Run: OMP_NUM_THREADS=1 /usr/bin/python3 bench/peers/cpu_time.py PEER.py [peer arguments]
"""
import runpy, sys, time

time.perf_counter = time.process_time
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
