// SPDX-License-Identifier: Apache-2.0
/*
 * The native half of JvmJni.java: JvmJni.down spins in C, then calls back into
 * Java (JvmJni.up) through JNI, so a stack goes Java -> C -> Java. Built by
 * tests/system/jvm.sh with the JDK's jni.h.
 */
#include <jni.h>

/* C's own work: half of down's time, by the same measure as upLeaf's */
static __attribute__((noinline)) long c_spin(long x)
{
	volatile long s = x;

	for (int i = 0; i < 4000; i++) {
		s += (s ^ i) * 31;
		s ^= s >> 7;
	}
	return s;
}

JNIEXPORT jlong JNICALL Java_JvmJni_down(JNIEnv *env, jclass cls, jlong n)
{
	jmethodID up = (*env)->GetStaticMethodID(env, cls, "up", "(J)J");
	jlong sum = 0;

	if (!up)
		return -1;
	for (jlong i = 0; i < n; i++) {
		sum += c_spin(i);
		sum += (*env)->CallStaticLongMethod(env, cls, up, i);
	}
	return sum;
}
