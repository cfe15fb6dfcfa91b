# Python recursion through C code (map and sum) at every level, for the walker's
# budget: python3 deep.py SECONDS DEPTH (rec appears DEPTH + 1 times per sample).
import sys, time
def spin():
    s = 0
    for i in range(3000):
        s += i
    return s
def rec(n):
    if n == 0:
        return spin()
    return sum(map(rec, [n - 1]))
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    rec(int(sys.argv[2]))
