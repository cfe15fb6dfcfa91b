# A C extension under a Python frame: zlib.compress called from squeeze().
#   python3 squeeze.py SECONDS
import sys, time, zlib
data = bytes(range(256)) * 4096
def squeeze():
    return zlib.compress(data, 9)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    squeeze()
