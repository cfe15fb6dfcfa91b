// SPDX-License-Identifier: Apache-2.0
// A known call chain for the JVM tests and bench: main -> run -> pick -> hotThree
// or coldOne, three calls to hotThree for each call to coldOne. The two leaves are
// the same work and too large to be inlined (over FreqInlineSize, 325 bytecodes),
// so each stays a compiled method of its own and a sampler can tell them apart.
//
//   java -cp DIR JvmRatio SECONDS
public final class JvmRatio {
    static long sink;

    static long hotThree(long x) {
        long s = x;
        for (int i = 0; i < 40; i++) {
            s += (x ^ i) * 31; s ^= s >>> 7; s += (x | i) * 29; s ^= s << 3;
            s += (x & i) * 23; s ^= s >>> 11; s += (x ^ i) * 19; s ^= s << 5;
            s += (x | i) * 17; s ^= s >>> 13; s += (x & i) * 13; s ^= s << 7;
            s += (x ^ i) * 11; s ^= s >>> 3; s += (x | i) * 7; s ^= s << 11;
            s += (x & i) * 5; s ^= s >>> 5; s += (x ^ i) * 3; s ^= s << 13;
            s += (x | i) * 37; s ^= s >>> 17; s += (x & i) * 41; s ^= s << 17;
            s += (x ^ i) * 43; s ^= s >>> 19; s += (x | i) * 47; s ^= s << 19;
            s += (x & i) * 53; s ^= s >>> 23; s += (x ^ i) * 59; s ^= s << 23;
            s += (x | i) * 61; s ^= s >>> 29; s += (x & i) * 67; s ^= s << 29;
        }
        return s;
    }

    static long coldOne(long x) {
        long s = x;
        for (int i = 0; i < 40; i++) {
            s += (x ^ i) * 31; s ^= s >>> 7; s += (x | i) * 29; s ^= s << 3;
            s += (x & i) * 23; s ^= s >>> 11; s += (x ^ i) * 19; s ^= s << 5;
            s += (x | i) * 17; s ^= s >>> 13; s += (x & i) * 13; s ^= s << 7;
            s += (x ^ i) * 11; s ^= s >>> 3; s += (x | i) * 7; s ^= s << 11;
            s += (x & i) * 5; s ^= s >>> 5; s += (x ^ i) * 3; s ^= s << 13;
            s += (x | i) * 37; s ^= s >>> 17; s += (x & i) * 41; s ^= s << 17;
            s += (x ^ i) * 43; s ^= s >>> 19; s += (x | i) * 47; s ^= s << 19;
            s += (x & i) * 53; s ^= s >>> 23; s += (x ^ i) * 59; s ^= s << 23;
            s += (x | i) * 61; s ^= s >>> 29; s += (x & i) * 67; s ^= s << 29;
        }
        return s;
    }

    static long pick(long i) {
        return (i & 3) != 3 ? hotThree(i) : coldOne(i);
    }

    static void run(long n) {
        for (long i = 0; i < n; i++)
            sink += pick(i);
    }

    public static void main(String[] args) {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 5;
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        while (System.nanoTime() < end)
            run(1000);
        System.out.println(sink);
    }
}
