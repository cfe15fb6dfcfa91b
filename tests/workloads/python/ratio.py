# A known call chain for the Python walker's tests and bench/python.sh:
#   <module> -> main -> loop -> Worker.hot_three (3 calls) / Worker.cold_one (1 call)
# each call doing the same work, so hot_three:cold_one is 3:1.
#   python3 ratio.py SECONDS [THREADS]
# With THREADS > 1, the loop also runs in that many more threads (named
# py-worker-N), and the main thread sleeps in time.sleep (the GIL released).
import sys
import threading
import time


class Worker:
    def hot_three(self, n):
        s = 0
        for i in range(n):
            s += i * i
        return s

    def cold_one(self, n):
        s = 0
        for i in range(n):
            s += i * i
        return s


def loop(seconds):
    w = Worker()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        w.hot_three(2000)
        w.hot_three(2000)
        w.hot_three(2000)
        w.cold_one(2000)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if threads <= 1:
        loop(seconds)
        return
    ts = [threading.Thread(target=loop, args=(seconds,), name="py-worker-%d" % i)
          for i in range(threads)]
    for t in ts:
        t.start()
    time.sleep(seconds)
    for t in ts:
        t.join()


main()
