// SPDX-License-Identifier: Apache-2.0
// Java -> C (JNI) -> Java, and a deep Java stack, for tests/system/jvm.sh:
//   java -Djava.library.path=DIR -cp DIR JvmJni jni SECONDS
//     main -> loop -> native down (libjvmjni.so: Java_JvmJni_down) -> C spin
//     and, from C, back up into Java: JvmJni.up -> JvmJni.upLeaf
//   java -cp DIR JvmJni deep SECONDS DEPTH
//     main -> deep (DEPTH recursive calls) -> deepLeaf
public final class JvmJni {
    static long sink;

    static native long down(long n);

    // called back from C
    static long up(long x) {
        return upLeaf(x) + 1;
    }

    static long upLeaf(long x) {
        long s = x;
        for (int i = 0; i < 4000; i++) {
            s += (s ^ i) * 31;
            s ^= s >>> 7;
        }
        return s;
    }

    static void loop(long seconds) {
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        while (System.nanoTime() < end)
            sink += down(1000);
    }

    static long deep(int depth) {
        if (depth == 0)
            return deepLeaf(depth);
        return deep(depth - 1) + 1;
    }

    static long deepLeaf(long x) {
        long s = x;
        for (int i = 0; i < 100000; i++) {
            s += (s ^ i) * 31;
            s ^= s >>> 7;
        }
        return s;
    }

    public static void main(String[] args) {
        long seconds = Long.parseLong(args[1]);
        if (args[0].equals("jni")) {
            System.loadLibrary("jvmjni");
            loop(seconds);
        } else {
            int depth = Integer.parseInt(args[2]);
            long end = System.nanoTime() + seconds * 1_000_000_000L;
            while (System.nanoTime() < end)
                sink += deep(depth);
        }
        System.out.println(sink);
    }
}
