# Prints the line-table test vectors of tests/unit/python_lines.h for the CPython
# that runs it: python3.X linevectors.py >> python_lines.h (see test_python.c).
import sys, dis
def f(n):
    s = 0
    for i in range(n):
        if i % 3 == 0:
            s += i * i
        else:
            s -= 1
    x = [j for j in range(3)]
    return s + \
        len(x)
c = f.__code__
v = sys.version_info
if v >= (3, 11):
    tab = c.co_linetable
    pairs = []
    for idx, pos in enumerate(c.co_positions()):
        pairs.append((idx, pos[0] if pos[0] is not None else -1))
elif v >= (3, 10):
    tab = c.co_linetable
    pairs = []
    for start, end, line in c.co_lines():
        for b in range(start, end, 2):
            pairs.append((b // 2, line if line is not None else -1))
else:
    tab = c.co_lnotab
    starts = list(dis.findlinestarts(c))
    pairs = []
    n = len(c.co_code)
    for b in range(0, n, 2):
        line = c.co_firstlineno
        for off, l in starts:
            if off <= b: line = l
        pairs.append((b // 2, line))
print("/* CPython %d.%d: f() of the generator, first line %d */" % (v[0], v[1], c.co_firstlineno))
print("static const uint8_t table_3%d[] = { %s };" % (v[1], ", ".join("0x%02x" % b for b in tab)))
print("static const int lines_3%d[][2] = { %s };" % (v[1], ", ".join("{ %d, %d }" % p for p in pairs if p[1] >= 0)))
print("#define FIRST_3%d %d" % (v[1], c.co_firstlineno))
